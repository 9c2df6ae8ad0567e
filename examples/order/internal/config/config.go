// Package config holds the order service's configuration, loaded from
// etc/order-api.yaml.
package config

import (
	"time"

	"github.com/zeromicro/go-zero/rest"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/dqx/admin"
)

// Config is the order service's configuration.
//
// Dashboard is the zerodq dashboard its API process mounts: read-only
// unless Actions, behind basic auth for its Users.
type Config struct {
	rest.RestConf
	Dq        dq.DqConf
	Order     OrderConf
	Dashboard admin.Config
}

// OrderConf tunes the orders themselves.
type OrderConf struct {
	// CancelAfter is how long an order may stay unpaid before it is
	// cancelled.
	CancelAfter time.Duration `json:",default=30m"`
	// ClientDelays lets POST /orders set its own cancelAfterMs, so that a demo
	// or a test can use delays of seconds; keep it off in production.
	ClientDelays bool `json:",optional"`
}
