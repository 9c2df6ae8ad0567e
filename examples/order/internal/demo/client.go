package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/zerodq/zerodq/examples/order/internal/logic"
	"github.com/zerodq/zerodq/examples/order/internal/types"
)

// Client calls the order API.
type Client struct {
	URL  string
	HTTP *http.Client
}

// NewClient returns a Client of the API at baseURL.
func NewClient(baseURL string) *Client {
	return &Client{URL: baseURL, HTTP: &http.Client{Timeout: 5 * time.Second}}
}

// APIError is an answer other than 200.
type APIError struct {
	Status int
	Body   string
}

// Error gives the status and the body.
func (e *APIError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.Status, e.Body)
}

// Create calls POST /orders.
func (c *Client) Create(ctx context.Context, req types.CreateOrderReq) (types.OrderResp, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return types.OrderResp{}, err
	}
	return c.do(ctx, http.MethodPost, "/orders", body)
}

// Get calls GET /orders/{id}.
func (c *Client) Get(ctx context.Context, id string) (types.OrderResp, error) {
	return c.do(ctx, http.MethodGet, "/orders/"+url.PathEscape(id), nil)
}

// Pay calls POST /orders/{id}/pay.
func (c *Client) Pay(ctx context.Context, id string) (types.OrderResp, error) {
	return c.do(ctx, http.MethodPost, "/orders/"+url.PathEscape(id)+"/pay", nil)
}

func (c *Client) do(ctx context.Context, method, path string, body []byte) (types.OrderResp, error) {
	var o types.OrderResp
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, bytes.NewReader(body))
	if err != nil {
		return o, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return o, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return o, err
	}
	if resp.StatusCode != http.StatusOK {
		return o, &APIError{Status: resp.StatusCode, Body: string(bytes.TrimSpace(data))}
	}
	return o, json.Unmarshal(data, &o)
}

// ParseTime reads a time the API wrote; the empty string is the zero time.
func ParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(logic.TimeLayout, s)
}
