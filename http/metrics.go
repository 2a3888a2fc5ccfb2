package http

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/trailaudit/trail/detect"
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
	forgeries  *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry, sv *detect.Supervisor) (*metrics, error) {
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
		forgeries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trail_forgeries_refused_total", Help: "Appends refused for holding Trail's own records or api_key or operator actors, by tenant.",
		}, []string{"tenant"}),
	}
	cs := []prometheus.Collector{m.appended, m.batchSize, m.commit, m.marked, m.redactions, m.refused, m.requests, m.signins, m.forgeries,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}
	if sv != nil {
		cs = append(cs, newDetections(sv))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// detections exports, at each scrape, each detection rule set's lag and
// the alerts it raised, by tenant and set, from the supervisor's statuses.
type detections struct {
	sv                  *detect.Supervisor
	lag, alerts, halted *prometheus.Desc
}

func newDetections(sv *detect.Supervisor) *detections {
	labels := []string{"tenant", "set"}
	return &detections{sv: sv,
		lag:    prometheus.NewDesc("trail_detect_lag_events", "Events of a tenant's log a detection rule set has yet to read.", labels, nil),
		alerts: prometheus.NewDesc("trail_detect_alerts_total", "Alerts a detection rule set raised since its engine started.", labels, nil),
		halted: prometheus.NewDesc("trail_detect_stopped", "1 when a detection rule set does not run (its status in GET /v1/rules says why).", labels, nil),
	}
}

func (d *detections) Describe(ch chan<- *prometheus.Desc) {
	ch <- d.lag
	ch <- d.alerts
	ch <- d.halted
}

func (d *detections) Collect(ch chan<- prometheus.Metric) {
	for _, st := range d.sv.Statuses("") {
		stopped := 0.0
		if st.Stopped {
			stopped = 1
		}
		ch <- prometheus.MustNewConstMetric(d.lag, prometheus.GaugeValue, float64(st.Lag), st.Tenant, st.Set)
		ch <- prometheus.MustNewConstMetric(d.alerts, prometheus.CounterValue, float64(st.Alerts), st.Tenant, st.Set)
		ch <- prometheus.MustNewConstMetric(d.halted, prometheus.GaugeValue, stopped, st.Tenant, st.Set)
	}
}

func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
}

// sinkCollector exports the status of each sink the server runs, labelled
// by tenant and sink: one series per configured sink, read at each scrape.
type sinkCollector struct {
	r   SinkRunner
	now func() time.Time
}

var (
	sinkLabels     = []string{"tenant", "sink"}
	sinkLagEvents  = prometheus.NewDesc("trail_sink_lag_events", "Events a sink has yet to deliver (the latest checkpoint's size less its cursor).", sinkLabels, nil)
	sinkLagSeconds = prometheus.NewDesc("trail_sink_lag_seconds", "How long the oldest event a sink has yet to deliver has waited (0 when caught up).", sinkLabels, nil)
	sinkDelivered  = prometheus.NewDesc("trail_sink_delivered_total", "Messages a sink's receiver acknowledged, since this process started the sink.", sinkLabels, nil)
	sinkFailures   = prometheus.NewDesc("trail_sink_failures_total", "Failed delivery attempts and runs of a sink, since this process started it.", sinkLabels, nil)
	sinkSkipped    = prometheus.NewDesc("trail_sink_skipped_total", "Events a sink's receiver refused and the sink skipped (on_refusal skip), since this process started it.", sinkLabels, nil)
	sinkStopped    = prometheus.NewDesc("trail_sink_stopped", "1 while a sink is stopped for good (a refusal, a log that went back): an alert; resume it once fixed.", sinkLabels, nil)
)

func (c sinkCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{sinkLagEvents, sinkLagSeconds, sinkDelivered, sinkFailures, sinkSkipped, sinkStopped} {
		ch <- d
	}
}

func (c sinkCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.now()
	for _, st := range c.r.Statuses("") {
		v := statusView(st, now)
		stopped := 0.0
		if v.Stopped {
			stopped = 1
		}
		for _, m := range []struct {
			d *prometheus.Desc
			t prometheus.ValueType
			v float64
		}{
			{sinkLagEvents, prometheus.GaugeValue, float64(v.LagEvents)},
			{sinkLagSeconds, prometheus.GaugeValue, v.LagSeconds},
			{sinkDelivered, prometheus.CounterValue, float64(v.Delivered)},
			{sinkFailures, prometheus.CounterValue, float64(v.Failures)},
			{sinkSkipped, prometheus.CounterValue, float64(v.Skipped)},
			{sinkStopped, prometheus.GaugeValue, stopped},
		} {
			ch <- prometheus.MustNewConstMetric(m.d, m.t, m.v, st.Tenant, st.Name)
		}
	}
}
