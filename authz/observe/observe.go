// Package observe turns decisions, the authorizer client's counters and the published
// snapshot into Prometheus metrics with bounded labels, and optionally logs every decision
// (never a header value, secret, AppCode or signature).
package observe

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-dev/portcullis/authz/authorizer"
	"github.com/portcullis-dev/portcullis/authz/compile"
	"github.com/portcullis-dev/portcullis/authz/engine"
)

// Observer records decisions.
type Observer struct {
	decisions    *decisionCounts
	latency      *prometheus.HistogramVec
	authzLatency prometheus.Histogram
	log          logr.Logger
	logDecisions bool

	reg        prometheus.Registerer
	collectors []prometheus.Collector // registered with reg by New
}

var latencyBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// New registers the metrics with reg; Unregister takes them out again. client and snapshot
// may be nil (no authorizer or snapshot metrics then). With logDecisions, every decision is
// logged at info level.
func New(reg prometheus.Registerer, client *authorizer.Client, snapshot func() *compile.Snapshot, log logr.Logger, logDecisions bool) (*Observer, error) {
	o := &Observer{
		decisions: &decisionCounts{},
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "portcullis_decision_duration_seconds",
			Help:    "Time to decide a request, from the front-end's point of view, by front-end (grpc, http).",
			Buckets: latencyBuckets,
		}, []string{"frontend"}),
		authzLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "portcullis_authorizer_call_duration_seconds",
			Help:    "Time the custom authorizer took to answer a decision that was not answered from the cache.",
			Buckets: latencyBuckets,
		}),
		log:          log,
		logDecisions: logDecisions,
	}
	cs := []prometheus.Collector{o.decisions, o.latency, o.authzLatency}
	if client != nil {
		cs = append(cs, &clientCollector{client: client})
	}
	if snapshot != nil {
		cs = append(cs, &snapshotCollector{snapshot: snapshot})
	}
	o.reg = reg
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			o.Unregister()
			return nil, err
		}
		o.collectors = append(o.collectors, c)
	}
	return o, nil
}

// Unregister takes o's metrics out of the registry New put them in, so that a later New
// with the same registry (serve run again in one process, as its tests do) can register
// its own.
func (o *Observer) Unregister() {
	for _, c := range o.collectors {
		o.reg.Unregister(c)
	}
	o.collectors = nil
}

// For returns the function a front-end calls after each decision.
func (o *Observer) For(frontend string) func(r *engine.Request, d *engine.Decision, took time.Duration) {
	latency := o.latency.WithLabelValues(frontend)
	return func(r *engine.Request, d *engine.Decision, took time.Duration) {
		binding := ""
		if d.Route != nil {
			binding = d.Route.Binding.Ref
		}
		code := engine.CodeNone
		if !d.Allowed() {
			code = d.Code
		}
		o.decisions.count(binding, code)
		latency.Observe(took.Seconds())
		if d.AuthorizerTime > 0 && !d.Cached {
			o.authzLatency.Observe(d.AuthorizerTime.Seconds())
		}
		if o.logDecisions {
			o.logDecision(frontend, r, d, binding, codeLabel(code), took)
		}
	}
}

func (o *Observer) logDecision(frontend string, r *engine.Request, d *engine.Decision, binding, code string, took time.Duration) {
	path, _, _ := strings.Cut(r.Target, "?") // the query may carry identity values
	kv := []any{"frontend", frontend, "requestId", d.RequestID, "method", r.Method, "host", r.Authority, "path", path,
		"binding", binding, "code", code, "app", d.App.String(), "custom", d.Custom.String(), "took", took}
	if d.Credential != nil {
		kv = append(kv, "credential", d.Credential.Ref)
	}
	if d.AuthorizerTime > 0 {
		kv = append(kv, "cached", d.Cached)
	}
	if d.Custom == engine.FactorPassed {
		kv = append(kv, "degraded", d.Degraded)
	}
	if r.Source.IsValid() {
		kv = append(kv, "source", r.Source.String())
	}
	if !d.Allowed() {
		kv = append(kv, "status", d.Status(), "reason", d.Message)
	}
	o.log.Info("Decision", kv...)
}

// decisionCounts is portcullis_decisions_total: a block of counters per binding, one per
// code, found by a lock-free read of a sync.Map. A CounterVec hashed both labels and took
// its read lock on every decision (68 ns, against 30), and kept 506 bytes per series: 5 MB
// for the 10,000 bindings of a large policy that allow, where a block and its entry take
// 231 bytes. As with the CounterVec, a binding's series appear once it has a decision, and
// stay; every deny code has a series with binding="" from the start.
type decisionCounts struct {
	byBinding sync.Map   // binding ("<ns>/<name>") → *codeCounts
	none      codeCounts // binding "": no route matched
}

// codeCounts counts decisions by code; CodeNone counts the allows.
type codeCounts [engine.NumCodes]atomic.Uint64

var descDecisions = prometheus.NewDesc("portcullis_decisions_total",
	"Decisions by APIBinding (\"<ns>/<name>\", empty when no route matched) and code (ALLOW or the error_code).",
	[]string{"binding", "code"}, nil)

func (d *decisionCounts) count(binding string, code engine.Code) {
	c := &d.none
	if binding != "" {
		v, ok := d.byBinding.Load(binding)
		if !ok {
			v, _ = d.byBinding.LoadOrStore(binding, new(codeCounts))
		}
		c = v.(*codeCounts)
	}
	c[code].Add(1)
}

func (d *decisionCounts) Describe(ch chan<- *prometheus.Desc) { ch <- descDecisions }

func (d *decisionCounts) Collect(ch chan<- prometheus.Metric) {
	for code := range engine.NumCodes {
		if n := d.none[code].Load(); n > 0 || engine.Code(code) != engine.CodeNone {
			ch <- prometheus.MustNewConstMetric(descDecisions, prometheus.CounterValue, float64(n), "", codeLabel(engine.Code(code)))
		}
	}
	d.byBinding.Range(func(k, v any) bool {
		for code := range engine.NumCodes {
			if n := v.(*codeCounts)[code].Load(); n > 0 {
				ch <- prometheus.MustNewConstMetric(descDecisions, prometheus.CounterValue, float64(n), k.(string), codeLabel(engine.Code(code)))
			}
		}
		return true
	})
}

// codeLabel is the code label of a decision: ALLOW or the error_code.
func codeLabel(c engine.Code) string {
	if c == engine.CodeNone {
		return "ALLOW"
	}
	return c.String()
}

// clientCollector reads the authorizer client's counters at scrape time.
type clientCollector struct{ client *authorizer.Client }

var (
	descCalls     = prometheus.NewDesc("portcullis_authorizer_calls_total", "Custom authorizer calls by outcome (allow, deny, or the failure reason).", []string{"outcome"}, nil)
	descHits      = prometheus.NewDesc("portcullis_authorizer_cache_hits_total", "Decisions answered from the authorizer result cache.", nil, nil)
	descMisses    = prometheus.NewDesc("portcullis_authorizer_cache_misses_total", "Decisions not answered from the cache (concurrent misses on one key share one call).", nil, nil)
	descEvictions = prometheus.NewDesc("portcullis_authorizer_cache_evictions_total", "Cache entries dropped to respect an authorizer's maxEntries.", nil, nil)
	descEntries   = prometheus.NewDesc("portcullis_authorizer_cache_entries", "Answers held in the authorizer result cache.", nil, nil)
	descDegraded  = prometheus.NewDesc("portcullis_authorizer_degraded_total", "Authorizer failures turned into allows by failurePolicy: Allow.", nil, nil)
	descAge       = prometheus.NewDesc("portcullis_snapshot_age_seconds", "Time since the published policy snapshot was built. It grows while nothing changes, healthy or not; portcullis_snapshot_stale_seconds tells whether the source is current.", nil, nil)
	descObjects   = prometheus.NewDesc("portcullis_objects", "Objects in the published snapshot by kind and Ready condition.", []string{"kind", "ready"}, nil)
)

func (c *clientCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCalls, descHits, descMisses, descEvictions, descEntries, descDegraded} {
		ch <- d
	}
}

func (c *clientCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.client.Stats()
	for _, o := range authorizer.Outcomes {
		ch <- prometheus.MustNewConstMetric(descCalls, prometheus.CounterValue, float64(s.Calls[o]), o)
	}
	ch <- prometheus.MustNewConstMetric(descHits, prometheus.CounterValue, float64(s.Hits))
	ch <- prometheus.MustNewConstMetric(descMisses, prometheus.CounterValue, float64(s.Misses))
	ch <- prometheus.MustNewConstMetric(descEvictions, prometheus.CounterValue, float64(s.Evictions))
	ch <- prometheus.MustNewConstMetric(descEntries, prometheus.GaugeValue, float64(s.Entries))
	ch <- prometheus.MustNewConstMetric(descDegraded, prometheus.CounterValue, float64(s.Degraded))
}

// snapshotCollector reads the published snapshot at scrape time.
type snapshotCollector struct{ snapshot func() *compile.Snapshot }

func (c *snapshotCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descAge
	ch <- descObjects
}

func (c *snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	if s == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(descAge, prometheus.GaugeValue, time.Since(s.BuiltAt).Seconds())
	for kind, n := range s.ReadyCounts() {
		ch <- prometheus.MustNewConstMetric(descObjects, prometheus.GaugeValue, float64(n.Ready), kind.String(), "true")
		ch <- prometheus.MustNewConstMetric(descObjects, prometheus.GaugeValue, float64(n.NotReady), kind.String(), "false")
	}
}
