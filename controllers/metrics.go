package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	buildSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "portcullis_snapshot_build_seconds",
		Help:    "Time to build and publish a policy snapshot.",
		Buckets: []float64{.0001, .0005, .001, .002, .005, .01, .05, .1, .5, 1, 5},
	})
	snapshotVersion = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "portcullis_snapshot_version",
		Help: "Version of the published policy snapshot; it increases with every build.",
	})
	statusWrites = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portcullis_status_writes_total",
		Help: "Status writes by the elected replica, by result (written, unchanged, gone, error).",
	}, []string{"result"})
	fileLoads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portcullis_file_loads_total",
		Help: "Loads of the policy directory in file mode, by result (ok, error).",
	}, []string{"result"})
)

func init() {
	metrics.Registry.MustRegister(buildSeconds, snapshotVersion, statusWrites, fileLoads)
}

var (
	descStale = prometheus.NewDesc("portcullis_snapshot_stale_seconds",
		"0 while the policy snapshot is known to reflect the Kubernetes API (every watch open, the last probe answered); otherwise seconds since it last was, or since the start when it never was. Decisions continue from the last snapshot meanwhile.", nil, nil)
	descUp = prometheus.NewDesc("portcullis_source_up",
		"1 while the policy snapshot is known to reflect the Kubernetes API (every watch open, the last probe answered), else 0.", nil, nil)
)

// freshnessCollector reads a policy's freshness at scrape time.
type freshnessCollector struct{ p *Policy }

// FreshnessCollector returns a collector of portcullis_snapshot_stale_seconds and
// portcullis_source_up for p, read at scrape time. It reports nothing for a policy whose
// source does not track its health (see WithSourceHealth).
func FreshnessCollector(p *Policy) prometheus.Collector { return freshnessCollector{p} }

// RegisterFreshness registers FreshnessCollector(p) with the registry MetricsHandler serves.
func RegisterFreshness(p *Policy) error { return metrics.Registry.Register(FreshnessCollector(p)) }

func (c freshnessCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descStale
	ch <- descUp
}

func (c freshnessCollector) Collect(ch chan<- prometheus.Metric) {
	current, stale, tracked := c.p.Freshness()
	if !tracked {
		return
	}
	up := 0.0
	if current {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(descStale, prometheus.GaugeValue, stale.Seconds())
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up)
}
