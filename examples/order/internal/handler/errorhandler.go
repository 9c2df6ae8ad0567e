package handler

import (
	"context"
	"errors"
	"net/http"

	"github.com/zerodq/zerodq/examples/order/internal/logic"
	"github.com/zerodq/zerodq/examples/order/internal/model"
	"github.com/zerodq/zerodq/examples/order/internal/types"
)

// ErrorHandler turns the errors of the logic into HTTP statuses and a JSON
// body; install it with httpx.SetErrorHandlerCtx. Anything it does not know,
// such as a body that does not parse, is the client's: 400, as go-zero
// answers by default.
func ErrorHandler(_ context.Context, err error) (int, any) {
	code := http.StatusBadRequest
	switch {
	case errors.Is(err, model.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, model.ErrCancelled), errors.Is(err, logic.ErrIDTaken):
		code = http.StatusConflict
	case errors.Is(err, logic.ErrUnavailable):
		code = http.StatusServiceUnavailable
	}
	return code, types.ErrorResp{Error: err.Error()}
}
