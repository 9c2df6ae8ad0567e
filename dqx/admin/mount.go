package admin

import (
	"net/http"

	"github.com/zeromicro/go-zero/core/logx"
	"github.com/zeromicro/go-zero/rest"

	"github.com/zerodq/zerodq/dq"
)

// Mount builds a Dashboard and adds its routes to s under c.Prefix, in one
// call: every page, API and action route with Config.Timeout as its timeout
// (go-zero's default of 3s would cut a large dead-letter count), and the
// event stream with rest.WithSSE and no timeout. Routes are added one by
// one (go-zero has no catch-all), each GET route with HEAD beside it; each
// is served by the Dashboard, which applies its own authentication. A route
// timeout longer than the server's raises go-zero's read and write timeouts
// for the whole server.
//
// Close the Dashboard when the server stops (e.g. with proc.AddShutdownListener
// or a service group) to end its live updates.
func Mount(s *rest.Server, c Config, in *dq.Inspector, opts ...Option) (*Dashboard, error) {
	d, err := New(c, in, opts...)
	if err != nil {
		return nil, err
	}
	var plain, sse []rest.Route
	for _, rt := range d.routes {
		rs := []rest.Route{{Method: rt.method, Path: rt.path, Handler: d.ServeHTTP}}
		if rt.method == http.MethodGet {
			// go-zero's router does not serve HEAD with GET, as ServeMux
			// does: a health check (curl -I) would get 405.
			rs = append(rs, rest.Route{Method: http.MethodHead, Path: rt.path, Handler: d.ServeHTTP})
		}
		if rt.kind == kindEvents {
			sse = append(sse, rs...)
		} else {
			plain = append(plain, rs...)
		}
	}
	prefix := func(o []rest.RouteOption) []rest.RouteOption {
		if d.c.Prefix != "" {
			o = append(o, rest.WithPrefix(d.c.Prefix))
		}
		return o
	}
	s.AddRoutes(plain, prefix([]rest.RouteOption{rest.WithTimeout(d.c.Timeout)})...)
	s.AddRoutes(sse, prefix([]rest.RouteOption{rest.WithSSE()})...)
	return d, nil
}

// MustMount is Mount that logs the error and exits on failure.
func MustMount(s *rest.Server, c Config, in *dq.Inspector, opts ...Option) *Dashboard {
	d, err := Mount(s, c, in, opts...)
	must(err)
	return d
}

func must(err error) { logx.Must(err) }

// The go-zero router gives the overview the bare prefix ("/zerodq"), the
// ServeMux both it and "/zerodq/"; pages link to the bare one.
var _ http.Handler = (*Dashboard)(nil)
