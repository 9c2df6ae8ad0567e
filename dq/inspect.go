package dq

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"runtime/debug"
	"sync"

	"github.com/zeromicro/go-zero/core/stores/redis"

	"github.com/zerodq/zerodq/internal/claim"
	"github.com/zerodq/zerodq/internal/node"
	"github.com/zerodq/zerodq/internal/routine"
)

// ErrJobNotFound is returned by Inspector.Job for an ID that Redis has no
// record of and that carries no due time of its own (a WithID ID, or one
// whose record expired): nothing can be said about it.
var ErrJobNotFound = errors.New("dq: no such job")

// Inspector is the one public way to look into and act on a queue: its jobs
// by ID with every copy met, its nodes and their copy counts, its dead
// letters, its consumers, and the queue-wide pause. The zerodq CLI and the
// dashboard are built on it alone. It reads beanstalkd's own counters and
// small indexes kept as jobs move; nothing on it scans all keys or runs a
// script over a whole set, so it is safe to call against production at any
// size. Every action it takes is written to the queue's audit stream with
// the actor (WithActor). It is safe for concurrent use.
type Inspector struct {
	conf  DqConf
	tube  string // the queue's name in Redis keys
	actor string
	rds   *redis.Redis
	store *claim.Store
	nodes []*node.Node // one per Beanstalks entry, in config order

	// replicas is Replicas as configured, before normalize caps it by the
	// node count: Doctor reports a config that asks for more.
	replicas int

	prodOnce sync.Once
	prod     Producer
	prodErr  error

	// bg runs the bulk operations StartBulk starts, on bgCtx; Close ends
	// both.
	bg       *routine.Group
	bgCtx    context.Context
	bgCancel context.CancelFunc
}

// InspectorOption configures an Inspector.
type InspectorOption func(*Inspector)

// WithActor names who acts through the Inspector in the audit stream
// (default user@host of this process).
func WithActor(who string) InspectorOption {
	return func(in *Inspector) { in.actor = who }
}

// NewInspector returns an Inspector of c's queue. A bad config fails at
// once; no server is contacted until a method is called.
func NewInspector(c DqConf, opts ...InspectorOption) (*Inspector, error) {
	replicas := c.withDefaults().Replicas
	c, err := c.normalize()
	if err != nil {
		return nil, err
	}
	rc := c.redisConf()
	rc.NonBlock = true
	rds, err := redis.NewRedis(rc)
	if err != nil {
		return nil, fmt.Errorf("dq: inspector: %w", err)
	}
	in := &Inspector{
		conf:  c,
		tube:  c.claimTube(),
		actor: defaultActor(),
		rds:   rds,
		store: claim.New(rds, c.KeyPrefix, c.DedupeTTL, claim.WithHistory(c.History), claim.WithCallTimeout(c.RedisTimeout)),
		bg:    routine.NewGroup(),
	}
	in.bgCtx, in.bgCancel = context.WithCancel(context.Background())
	nopts := node.Options{DialTimeout: c.DialTimeout, IOTimeout: c.IOTimeout}
	for _, b := range c.Beanstalks {
		in.nodes = append(in.nodes, node.New(b.Endpoint, b.Tube, nopts))
	}
	in.replicas = replicas
	for _, o := range opts {
		o(in)
	}
	return in, nil
}

// Queue is the queue's name in Redis keys: its tube, or its tubes joined
// with ',' when the nodes name different ones.
func (in *Inspector) Queue() string { return in.tube }

// Actor is who the audit stream names for this Inspector's actions.
func (in *Inspector) Actor() string { return in.actor }

// Close stops the bulk operations it started (each records that it stopped
// early) and closes the Inspector's node connections and the producer it
// may have opened for Enqueue.
func (in *Inspector) Close() error {
	in.bgCancel()
	in.bg.Stop()
	var errs []error
	for _, n := range in.nodes {
		errs = append(errs, n.Close())
	}
	if in.prod != nil {
		errs = append(errs, in.prod.Close())
	}
	return errors.Join(errs...)
}

// producer opens, once, the producer Enqueue and Revoke go through.
func (in *Inspector) producer() (Producer, error) {
	in.prodOnce.Do(func() {
		in.prod, in.prodErr = NewProducer(in.conf)
	})
	return in.prod, in.prodErr
}

// defaultActor is user@host of this process.
func defaultActor() string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return name + "@" + host
}

// Version is zerodq's module version as the running binary was built with
// it ("(devel)" inside this repository).
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Path == modulePath {
			return bi.Main.Version
		}
		for _, m := range bi.Deps {
			if m.Path == modulePath {
				return m.Version
			}
		}
	}
	return "(devel)"
}

const modulePath = "github.com/zerodq/zerodq"

// errUnbuilt is what a method of the inspector answers until it is built.
var errUnbuilt = errors.New("dq: inspector: not built yet")
