package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/dqx"
	"github.com/zerodq/zerodq/dqx/admin"
)

// usersEnvDefault is where zerodq serve looks for dashboard accounts when
// the config's dashboard section names no variable of its own.
const usersEnvDefault = "ZERODQ_DASHBOARD_USERS"

func serveCommand() *command {
	var listen, section string
	return &command{
		name: "serve",
		summary: "Serves the web dashboard of the queue (and of its cron schedule when the yaml has one) until " +
			"interrupted. Accounts come from the yaml's dashboard section (Users: user to bcrypt hash) or from " +
			usersEnvDefault + " (user:hash,user:hash). Without any it serves only on a loopback address, and says so. " +
			"Actions (retry, delete, revoke, pause) are on only when the section sets Actions: true.",
		example: "  zerodq -f etc/order-api.yaml serve\n" +
			"  ZERODQ_DASHBOARD_USERS=\"ops:$(htpasswd -nbB ops secret | cut -d: -f2)\" zerodq -f etc/order-api.yaml serve --listen :8090",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&listen, "listen", "127.0.0.1:8090", "the `address` to serve on")
			fs.StringVar(&section, "dashboard-section", "Dashboard", "the yaml `section` holding the admin.Config")
			// A server runs until interrupted, not for the 30s other
			// commands are bounded by (--timeout still bounds it if given).
			_ = fs.Set("timeout", "0")
		},
		run: func(ctx context.Context, cl *cli, args []string) error {
			if len(args) > 0 {
				return usagef("serve takes no arguments, got %q", args[0])
			}
			return cl.serve(ctx, listen, section)
		},
	}
}

// serve runs the dashboard until ctx ends.
func (cl *cli) serve(ctx context.Context, listen, section string) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return usagef("--listen %q: %v", listen, err)
	}
	v, err := cl.load(section, reflect.TypeOf(admin.Config{}))
	if err != nil {
		return err
	}
	c := v.(admin.Config)
	if c.UsersEnv == "" {
		c.UsersEnv = usersEnvDefault
	}
	in, err := cl.inspector()
	if err != nil {
		return err
	}
	defer in.Close()
	var opts []admin.Option
	if ci, err := cl.optionalCron(in); err != nil {
		return err
	} else if ci != nil {
		defer ci.Close()
		opts = append(opts, admin.WithCron(ci))
	}
	d, err := admin.New(c, in, opts...)
	if errors.Is(err, admin.ErrNoAuth) {
		if !loopback(host) {
			return usagef("refusing to serve on %s without authentication: give accounts in the %s section "+
				"(Users) or in %s, or listen on 127.0.0.1", listen, section, c.UsersEnv)
		}
		fmt.Fprintf(cl.stderr, "zerodq serve: WARNING: no authentication configured; serving without it because "+
			"%s is a loopback address (anyone on this host can open the dashboard)\n", listen)
		d, err = admin.New(c, in, append(opts, admin.WithInsecure())...)
	}
	if err != nil {
		return usagef("%s: section %s: %v", cl.file, section, err)
	}
	defer d.Close()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	srv := &http.Server{Handler: d, ReadHeaderTimeout: 10 * time.Second}
	mode := "read-only"
	if c.Actions {
		mode = "actions on"
	}
	path := d.Prefix()
	if path == "" {
		path = "/"
	}
	fmt.Fprintf(cl.stdout, "zerodq serve: dashboard of %s at http://%s%s (%s)\n", in.Queue(), ln.Addr(), path, mode)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// Event streams end with the Dashboard; then the server drains.
	_ = d.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("serve: shutdown: %w", err)
	}
	<-errc
	return nil
}

// optionalCron opens the schedule's CronInspector when the yaml has a cron
// section, and returns nil when it has none.
func (cl *cli) optionalCron(in *dq.Inspector) (*dqx.CronInspector, error) {
	v, err := cl.load(cl.cronSection, reflect.TypeOf(dqx.CronConf{}))
	if err != nil {
		return nil, err
	}
	cc := v.(dqx.CronConf)
	if len(cc.Entries) == 0 && cc.Name == "" {
		return nil, nil
	}
	c, err := cl.config()
	if err != nil {
		return nil, err
	}
	ci, err := dqx.NewCronInspector(c, cc, dqx.WithDqInspector(in))
	if err != nil {
		return nil, usagef("%s: section %s: %v", cl.file, cl.cronSection, err)
	}
	return ci, nil
}

// loopback tells whether host names this machine's loopback interface only.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
