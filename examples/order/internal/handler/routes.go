// Package handler maps the order API's routes to their logic.
package handler

import (
	"net/http"

	"github.com/zeromicro/go-zero/rest"

	"github.com/zerodq/zerodq/examples/order/internal/svc"
)

// RegisterHandlers adds the order API's routes to server.
func RegisterHandlers(server *rest.Server, serverCtx *svc.ServiceContext) {
	server.AddRoutes(
		[]rest.Route{
			{
				Method:  http.MethodPost,
				Path:    "/orders",
				Handler: CreateOrderHandler(serverCtx),
			},
			{
				Method:  http.MethodGet,
				Path:    "/orders/:id",
				Handler: GetOrderHandler(serverCtx),
			},
			{
				Method:  http.MethodPost,
				Path:    "/orders/:id/pay",
				Handler: PayOrderHandler(serverCtx),
			},
		},
	)
}
