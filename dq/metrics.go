package dq

import (
	"github.com/zeromicro/go-zero/core/metric"
)

// Metrics, through go-zero's core/metric: they record only when the host
// service enables Prometheus (DevServer EnableMetrics or Prometheus.Host),
// and appear on its /metrics. Labels stay bounded: tubes and endpoints come
// from the config, results and outcomes from fixed sets; never job IDs.
const metricNamespace = "zerodq"

// Outcomes of a consumed copy, the values of the "outcome" label.
const (
	outcomeOK        = "ok"        // handler succeeded
	outcomeRetry     = "retry"     // handler failed, job retried later
	outcomeDead      = "dead"      // job buried as a dead letter
	outcomeDuplicate = "duplicate" // spare copy of a job done, or an extra dead letter, deleted
	outcomeRevoked   = "revoked"   // copy of a revoked job deleted
	outcomeMalformed = "malformed" // body not a valid envelope, buried
)

var (
	metricProduced = metric.NewCounterVec(&metric.CounterVecOpts{
		Namespace: metricNamespace, Subsystem: "producer", Name: "jobs_total",
		Help:   "Jobs enqueued, by tube and result (ok, quorum, invalid, error).",
		Labels: []string{"tube", "result"},
	})
	metricCopies = metric.NewCounterVec(&metric.CounterVecOpts{
		Namespace: metricNamespace, Subsystem: "producer", Name: "copies_total",
		Help:   "Job copies put, by node and result (ok, failed, uncertain).",
		Labels: []string{"node", "result"},
	})
	metricConsumed = metric.NewCounterVec(&metric.CounterVecOpts{
		Namespace: metricNamespace, Subsystem: "consumer", Name: "jobs_total",
		Help:   "Copies consumed, by tube and outcome (ok, retry, dead, duplicate, revoked, malformed).",
		Labels: []string{"tube", "outcome"},
	})
	metricHandlerDuration = metric.NewHistogramVec(&metric.HistogramVecOpts{
		Namespace: metricNamespace, Subsystem: "consumer", Name: "handler_duration_ms",
		Help:    "Handler run time in milliseconds.",
		Labels:  []string{"tube"},
		Buckets: []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000},
	})
	metricLateness = metric.NewHistogramVec(&metric.HistogramVecOpts{
		Namespace: metricNamespace, Subsystem: "consumer", Name: "lateness_ms",
		Help:    "Time from a job's due time to its handler's start, in milliseconds.",
		Labels:  []string{"tube"},
		Buckets: []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000, 30000},
	})
	metricInFlight = metric.NewGaugeVec(&metric.GaugeVecOpts{
		Namespace: metricNamespace, Subsystem: "consumer", Name: "jobs_in_flight",
		Help:   "Handlers running.",
		Labels: []string{"tube"},
	})
	metricHeld = metric.NewGaugeVec(&metric.GaugeVecOpts{
		Namespace: metricNamespace, Subsystem: "consumer", Name: "copies_held",
		Help:   "Copies reserved and held in memory until their due time, or while another copy of their job is claimed or run here.",
		Labels: []string{"tube"},
	})
	metricErrors = metric.NewCounterVec(&metric.CounterVecOpts{
		Namespace: metricNamespace, Name: "errors_total",
		Help:   "Errors talking to a beanstalkd node or to Redis, by target (endpoint or \"redis\") and operation.",
		Labels: []string{"target", "op"},
	})
)
