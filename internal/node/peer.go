package node

import "sync/atomic"

// peer is what a Node and a Reserver share: one node's address and tube,
// the options, the tube name's check, the back-off that follows a failed
// dial or a timeout, and the closed flag.
type peer struct {
	endpoint string
	tube     string
	o        Options
	tubeErr  error
	hold     backoff
	closed   atomic.Bool
}

func newPeer(endpoint, tube string, o Options) peer {
	return peer{endpoint: endpoint, tube: tube, o: o.withDefaults(), tubeErr: checkTube(tube)}
}

// Endpoint is the node's host:port.
func (p *peer) Endpoint() string { return p.endpoint }

// dial opens a connection to the node; a failure starts the back-off.
func (p *peer) dial() (*conn, error) {
	c, err := dial(p.endpoint, p.o)
	if err != nil {
		p.hold.start(p.o.Backoff)
		return nil, err
	}
	return c, nil
}

// fail wraps an error of a request that was never sent.
func (p *peer) fail(op string, err error) error {
	return &opError{op: op, endpoint: p.endpoint, err: err}
}

// settle applies a verdict to the connection and the node: a broken
// connection is closed, a timeout holds the node off for the back-off.
func (p *peer) settle(c *conn, v verdict) {
	if v.broken {
		c.close()
	}
	if v.timeout {
		p.hold.start(p.o.Backoff)
	}
}
