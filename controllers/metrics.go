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
