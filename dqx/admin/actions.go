package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/zerodq/zerodq/dq"
)

// Actions change the queue. Each one passed authentication, the read-only
// switch and the same-origin check (wrap) before it gets here, and acts
// through a view of the queue's Inspector as the authenticated user
// (Inspector.As): the Inspector writes the action to the audit stream once,
// under the user's name, and a bulk operation or a pause names the user.

// as is the queue's Inspector acting as the request's user.
func (rq *request) as() *dq.Inspector { return rq.queue.As(rq.user) }

func (d *Dashboard) actRevoke(w http.ResponseWriter, r *http.Request, rq *request) {
	id := r.PathValue("id")
	if err := rq.as().Revoke(r.Context(), id); err != nil {
		// Too late to revoke is a conflict; Redis or the audit stream not
		// answering is not.
		code := http.StatusServiceUnavailable
		switch {
		case errors.Is(err, dq.ErrBadID):
			code = http.StatusBadRequest
		case errors.Is(err, dq.ErrRunning), errors.Is(err, dq.ErrDone), errors.Is(err, dq.ErrDead),
			errors.Is(err, dq.ErrMaybeDone):
			code = http.StatusConflict
		}
		writeError(w, code, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Revoked string `json:"revoked"`
	}{id})
}

func (d *Dashboard) actPause(w http.ResponseWriter, r *http.Request, rq *request) {
	d.pauseResume(w, r, rq, rq.as().Pause)
}

func (d *Dashboard) actResume(w http.ResponseWriter, r *http.Request, rq *request) {
	d.pauseResume(w, r, rq, rq.as().Resume)
}

func (d *Dashboard) pauseResume(w http.ResponseWriter, r *http.Request, rq *request, fn func(context.Context) error) {
	if err := fn(r.Context()); err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	p, err := rq.queue.Paused(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (d *Dashboard) actDeadRetry(w http.ResponseWriter, r *http.Request, rq *request) {
	d.bulk(w, r, rq, "retry")
}

func (d *Dashboard) actDeadDelete(w http.ResponseWriter, r *http.Request, rq *request) {
	d.bulk(w, r, rq, "delete")
}

// bulkRequest is the body of /api/dead/retry and /api/dead/delete: the IDs
// given, or, with All, every entry the filter selects (counted, then worked
// through server-side in the background).
type bulkRequest struct {
	IDs   []string `json:"ids"`
	All   bool     `json:"all"`
	Match string   `json:"match"`
	Since string   `json:"since"`
}

// maxActionBody bounds an action's body (go-zero's default MaxBytes, which
// refuses a larger one in front of a mounted dashboard); maxBulkIDs bounds
// the IDs one bulk action names (a larger set is selected with a filter
// and all=1).
const (
	maxActionBody = 1 << 20
	maxBulkIDs    = 10000
)

// errTooLarge marks a body over maxActionBody.
var errTooLarge = errors.New("request body too large")

func readBulkRequest(r *http.Request) (bulkRequest, error) {
	br, err := readBulkBody(r)
	if err == nil && len(br.IDs) > maxBulkIDs {
		err = fmt.Errorf("%w: %d ids: at most %d in one action (select more with a filter and all=1)",
			errBadRequest, len(br.IDs), maxBulkIDs)
	}
	return br, err
}

func readBulkBody(r *http.Request) (bulkRequest, error) {
	var br bulkRequest
	r.Body = http.MaxBytesReader(nil, r.Body, maxActionBody)
	tooLarge := func(err error) error {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("%w: over %d bytes", errTooLarge, maxActionBody)
		}
		return fmt.Errorf("%w: %v", errBadRequest, err)
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return br, tooLarge(err)
		}
		// all may come as true or as 1, as in a form.
		var raw struct {
			IDs   []string        `json:"ids"`
			All   json.RawMessage `json:"all"`
			Match string          `json:"match"`
			Since string          `json:"since"`
		}
		if err := json.Unmarshal(body, &raw); err != nil {
			return br, fmt.Errorf("%w: body: %v", errBadRequest, err)
		}
		br = bulkRequest{IDs: raw.IDs, Match: raw.Match, Since: raw.Since}
		switch strings.Trim(string(raw.All), `"`) {
		case "", "false", "0", "null":
		case "true", "1":
			br.All = true
		default:
			return br, fmt.Errorf("%w: all %s: true or 1", errBadRequest, raw.All)
		}
		return br, nil
	}
	if err := r.ParseForm(); err != nil {
		return br, tooLarge(err)
	}
	for _, v := range r.PostForm["ids"] {
		br.IDs = append(br.IDs, splitIDs(v)...)
	}
	for _, v := range r.PostForm["id"] {
		if v = strings.TrimSpace(v); v != "" {
			br.IDs = append(br.IDs, v)
		}
	}
	switch r.PostForm.Get("all") {
	case "1", "true", "on":
		br.All = true
	}
	br.Match, br.Since = r.PostForm.Get("match"), r.PostForm.Get("since")
	return br, nil
}

// selection turns the request into a DeadSelect: IDs, or all=1 with the
// filter; both or neither is refused, so that a missing list never means
// "every dead letter".
func (br bulkRequest) selection() (dq.DeadSelect, error) {
	switch {
	case len(br.IDs) > 0 && br.All:
		return dq.DeadSelect{}, fmt.Errorf("%w: give ids or all=1, not both", errBadRequest)
	case len(br.IDs) > 0:
		return dq.DeadSelect{IDs: br.IDs}, nil
	case !br.All:
		return dq.DeadSelect{}, fmt.Errorf("%w: give ids, or all=1 (with match and since) for every entry matching", errBadRequest)
	}
	f := dq.DeadFilter{Match: br.Match}
	if br.Since != "" {
		t, err := parseSince(br.Since)
		if err != nil {
			return dq.DeadSelect{}, fmt.Errorf("%w: %v", errBadRequest, err)
		}
		f.Since = t
	}
	return dq.DeadSelect{Filter: f}, nil
}

// opAnswer is a bulk action's answer: its operation, whose progress
// /api/ops/{id} reports from any replica.
type opAnswer struct {
	OpID    string `json:"op_id"`
	Matched int    `json:"matched"`
}

func (d *Dashboard) bulk(w http.ResponseWriter, r *http.Request, rq *request, verb string) {
	br, err := readBulkRequest(r)
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, errTooLarge) {
			code = http.StatusRequestEntityTooLarge
		}
		writeError(w, code, err.Error())
		return
	}
	sel, err := br.selection()
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	op, err := rq.as().StartBulk(r.Context(), verb, sel)
	if err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, opAnswer{OpID: op.ID, Matched: op.Matched})
}
