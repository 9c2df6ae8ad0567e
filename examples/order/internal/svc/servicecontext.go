// Package svc builds the resources the handlers, logic and consumers share.
package svc

import (
	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/examples/order/internal/config"
	"github.com/zerodq/zerodq/examples/order/internal/model"
)

// ServiceContext carries the service's shared resources.
type ServiceContext struct {
	Config   config.Config
	Producer dq.Producer
	Orders   model.OrderModel
}

// NewServiceContext connects the producer and creates the order store; it
// exits the process if the Dq section is wrong, as go-zero's Must* do.
func NewServiceContext(c config.Config) *ServiceContext {
	return &ServiceContext{
		Config:   c,
		Producer: dq.MustNewProducer(c.Dq),
		Orders:   model.NewMemoryOrderModel(),
	}
}
