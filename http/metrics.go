package http

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are what /metrics exports.
type metrics struct {
	reg        *prometheus.Registry
	appended   prometheus.Counter
	batchSize  prometheus.Histogram
	commit     prometheus.Histogram
	marked     prometheus.Counter
	redactions prometheus.Counter
	refused    *prometheus.CounterVec
	requests   *prometheus.HistogramVec
	signins    *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	m := &metrics{
		reg: reg,
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trail_events_appended_total", Help: "Events appended through the API.",
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "trail_append_batch_events", Help: "Events per append request.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "trail_append_seconds", Help: "Time for an append to be durable (validation, commit).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		marked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trail_events_marked_total", Help: "Events stored with validation marks (broken catalog rules).",
		}),
		redactions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trail_redactions_total", Help: "Values redacted from events before they were stored.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trail_requests_refused_total", Help: "Requests answered with an error, by Trail error code.",
		}, []string{"code"}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "trail_request_seconds", Help: "API request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"route"}),
		signins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trail_ui_signins_total", Help: "Web UI sign-ins by result: success, failure, throttled (refused unchecked: too many failures from the address).",
		}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.appended, m.batchSize, m.commit, m.marked, m.redactions, m.refused, m.requests, m.signins,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
}
