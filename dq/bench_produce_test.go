package dq

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beanstalkd/go-beanstalk"

	"github.com/zerodq/zerodq/internal/dqtest"
)

// The produce benchmarks put 100-byte jobs, each replicated on 3 nodes, from
// 1 and 16 goroutines. BenchmarkProduceRaw does the same beanstalkd work with
// go-beanstalk alone, as fast as it honestly goes: several pipelined
// connections per node and the 3 puts of a job in parallel; it is what the
// producer's own work (IDs, envelopes, quorum, deadlines) is measured against.

const (
	benchBodySize = 100
	benchConns    = defaultProducerConns
	// rawConns are go-beanstalk connections: each waits for its replies in
	// turn, so the raw baseline spreads its puts over several.
	rawConns = 4
)

var benchGoroutines = []int{1, 16}

func BenchmarkProduce(b *testing.B) {
	e := dqtest.NewEnv(b, dqtest.EnvOptions{})
	c := testConf(b, e)
	c.IOTimeout = 2 * time.Second // the machine is shared: no spurious timeouts
	p, err := NewProducer(c, WithConnsPerNode(benchConns))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	body := make([]byte, benchBodySize)

	for _, g := range benchGoroutines {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			runJobs(b, g, func() error {
				_, err := p.Delay(body, time.Hour)
				return err
			})
		})
	}
}

func BenchmarkProduceRaw(b *testing.B) {
	e := dqtest.NewEnv(b, dqtest.EnvOptions{})
	c := testConf(b, e)
	nodes := make([]*rawNode, len(c.Beanstalks))
	for i, bs := range c.Beanstalks {
		nodes[i] = dialRawNode(b, bs.Endpoint, bs.Tube, rawConns)
	}
	body := make([]byte, benchBodySize)

	for _, g := range benchGoroutines {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			runJobs(b, g, func() error {
				var wg sync.WaitGroup
				errs := make([]error, len(nodes))
				for i := 1; i < len(nodes); i++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						errs[i] = nodes[i].put(body)
					}()
				}
				errs[0] = nodes[0].put(body)
				wg.Wait()
				for _, err := range errs {
					if err != nil {
						return err
					}
				}
				return nil
			})
		})
	}
}

// runJobs runs b.N jobs spread over g goroutines and reports jobs/s.
func runJobs(b *testing.B, g int, job func() error) {
	b.ReportAllocs()
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := job(); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
}

// rawNode is a few go-beanstalk connections to one node's tube, picked
// round-robin; go-beanstalk pipelines concurrent requests on each.
type rawNode struct {
	tubes []*beanstalk.Tube
	next  atomic.Uint32
}

func dialRawNode(b *testing.B, endpoint, tube string, conns int) *rawNode {
	n := &rawNode{}
	for range conns {
		conn := dialNode(b, endpoint)
		n.tubes = append(n.tubes, beanstalk.NewTube(conn, tube))
	}
	return n
}

func (n *rawNode) put(body []byte) error {
	t := n.tubes[n.next.Add(1)%uint32(len(n.tubes))]
	_, err := t.Put(body, DefaultPriority, time.Hour, 30*time.Second)
	return err
}
