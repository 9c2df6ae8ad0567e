package dq

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beanstalkd/go-beanstalk"

	"github.com/zerodq/zerodq/internal/dqtest"
)

// The drain benchmarks fill 3 nodes with b.N jobs of 3 copies each, then
// measure how fast one consumer process runs them all with a no-op handler.
// BenchmarkDrainRaw does the same beanstalkd work (reserve and delete every
// copy) with go-beanstalk alone and no Redis: several reserving connections
// per node, each deleting what it reserved.

const drainConnsPerNode = 4

func fillNodes(b *testing.B, p Producer, n int) {
	b.Helper()
	body := make([]byte, benchBodySize)
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if _, err := p.Delay(body, 0); err != nil {
					panic(err)
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkDrain(b *testing.B) {
	e := dqtest.NewEnv(b, dqtest.EnvOptions{})
	c := testConf(b, e)
	c.IOTimeout = 2 * time.Second
	c.Workers = 64
	p, err := NewProducer(c)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	fillNodes(b, p, b.N)

	var done atomic.Int64
	all := make(chan struct{})
	cs, err := NewConsumer(c, WithHandle(func(ctx context.Context, body []byte) error {
		if done.Add(1) == int64(b.N) {
			close(all)
		}
		return nil
	}))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	go cs.Start()
	<-all
	elapsed := time.Since(start)
	b.StopTimer()
	cs.Stop()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
}

func BenchmarkDrainRaw(b *testing.B) {
	e := dqtest.NewEnv(b, dqtest.EnvOptions{})
	c := testConf(b, e)
	nodes := make([]*rawNode, len(c.Beanstalks))
	for i, bs := range c.Beanstalks {
		nodes[i] = dialRawNode(b, bs.Endpoint, bs.Tube, benchConns)
	}
	body := make([]byte, benchBodySize)
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				for _, n := range nodes {
					if err := n.putReady(body); err != nil {
						panic(err)
					}
				}
			}
		}()
	}
	wg.Wait()

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var copies atomic.Int64
	total := int64(b.N * len(nodes))
	var rg sync.WaitGroup
	for _, bs := range c.Beanstalks {
		for range drainConnsPerNode {
			conn := dialNode(b, bs.Endpoint)
			ts := beanstalk.NewTubeSet(conn, bs.Tube)
			rg.Add(1)
			go func() {
				defer rg.Done()
				for copies.Load() < total {
					id, _, err := ts.Reserve(time.Second)
					if err != nil {
						if time.Since(start) > time.Minute {
							panic(fmt.Sprint("raw drain stuck: ", err))
						}
						continue // timed out: another connection took the last copies
					}
					if err := conn.Delete(id); err != nil {
						panic(fmt.Sprint("delete: ", err))
					}
					copies.Add(1)
				}
			}()
		}
	}
	rg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
}

func (n *rawNode) putReady(body []byte) error {
	t := n.tubes[n.next.Add(1)%uint32(len(n.tubes))]
	_, err := t.Put(body, DefaultPriority, 0, 30*time.Second)
	return err
}
