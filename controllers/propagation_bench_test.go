package controllers_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/go-logr/logr"
	"google.golang.org/grpc/codes"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
	authzclient "github.com/portcullis-dev/portcullis/authz/authorizer"
	"github.com/portcullis-dev/portcullis/authz/compile"
	"github.com/portcullis-dev/portcullis/authz/engine"
	"github.com/portcullis-dev/portcullis/authz/engine/enginetest"
	"github.com/portcullis-dev/portcullis/authz/extauthz"
	"github.com/portcullis-dev/portcullis/controllers"
)

// BenchmarkPropagation measures, against the real kube-apiserver, the time from an API write
// being issued to the first changed decision: engine.Decide on the snapshot a replica has
// published, which is what a request arriving at that instant would get.
//
// The world (PORTCULLIS_BENCH_BINDINGS APIBindings, default 10,000, and
// PORTCULLIS_BENCH_CREDENTIALS Credentials, default 100,000, each with its Secret, ten
// bindings and one CustomAuthorizer per namespace) is created first through the API. The
// package's manager (TestMain) is the elected replica and writes the statuses; once it is done,
// a second replica starts (a follower: a Lease held elsewhere keeps it from writing status),
// and its first build is the world's full compile. Propagation is measured on that replica,
// PORTCULLIS_BENCH_WRITES (default 100) writes per scenario, one at a time:
//
//   - create-credential: a new gold Credential (its Secret already exists) that a label
//     selector binds; a request with its AppCode goes from deny to allow;
//   - disable-credential: one of those set disabled; allow to deny;
//   - edit-binding: a route of a binding moves from /v2/... to /v3/...; a request to the new
//     path goes from ROUTE_NOT_FOUND to allow (or back).
//
// "idle" runs them on a quiet replica, "load" while PORTCULLIS_BENCH_LOAD_WORKERS (default 32)
// goroutines send Envoy-shaped CheckRequests for the same policy through the real ext_authz
// gRPC server over loopback. The targets (reported, not asserted) are p99 <= 10 ms idle and
// <= 20 ms under load.
//
// Each write is broken down into: api (the API call until it returns), watch (until the
// replica's informer hands the event to a second handler registered on the same shared
// informer), publish (from that event to the changed decision: workqueue, build, atomic
// store) and build (compile.Build alone, from the replica's own "Built snapshot" log record).
// The changed decision is seen by a Policy.OnBuild listener that decides the probe request
// on every published snapshot, backed by a 100 µs poll of Policy.Snapshot; the earlier wins.
func BenchmarkPropagation(b *testing.B) {
	cfg := worldConfig{
		bindings:    envInt("PORTCULLIS_BENCH_BINDINGS", 10_000),
		credentials: envInt("PORTCULLIS_BENCH_CREDENTIALS", 100_000),
	}
	writes := envInt("PORTCULLIS_BENCH_WRITES", 100)
	workers := envInt("PORTCULLIS_BENCH_LOAD_WORKERS", 32)

	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Allows the token "t0k" (sent as the identity source); the answers are cached.
		status := "deny"
		if strings.Contains(readAll(r), `"token":"t0k"`) {
			status = "allow"
		}
		_, _ = w.Write([]byte(`{"status":"` + status + `","context":{"user":"u-42"}}`))
	}))
	b.Cleanup(fn.Close)
	cfg.authorizerURL = fn.URL + "/verify"

	w := loadWorld(b, cfg)
	if b.Failed() {
		return
	}
	az := authzclient.New(authzclient.Options{})
	rig := startBenchReplica(b, w, az)
	if b.Failed() {
		return
	}

	b.Run("world", func(b *testing.B) {
		b.ReportMetric(float64(cfg.bindings), "bindings")
		b.ReportMetric(float64(cfg.credentials), "credentials")
		b.ReportMetric(w.loadTook.Seconds(), "load-s")
		b.ReportMetric(rig.compile.Seconds(), "compile-s")
		b.ReportMetric(rig.startup.Seconds(), "startup-s")
		b.ReportMetric(rig.rssMB, "rss-MB")
		b.ReportMetric(rig.hwmMB, "hwm-MB")
		b.ReportMetric(rig.replicaMB, "replica-MB")
		b.Logf("world: %d APIBindings, %d Credentials + Secrets, %d CustomAuthorizers in %d namespaces (%d objects) created in %s",
			cfg.bindings, cfg.credentials, len(w.namespaces), len(w.namespaces), w.objects, w.loadTook.Round(time.Second))
		b.Logf("replica: full compile %s, start to ready %s (list + compile); process VmRSS %.0f MB (two replicas in one process), VmHWM %.0f MB, the measured replica added %.0f MB",
			rig.compile.Round(time.Millisecond), rig.startup.Round(time.Millisecond), rig.rssMB, rig.hwmMB, rig.replicaMB)
	})

	scenarios := func(b *testing.B, variant string, lg *load) {
		for _, sc := range []struct {
			name  string
			write func(b *testing.B) *probe
		}{
			{"create-credential", rig.createCredential},
			{"disable-credential", rig.disableCredential},
			{"edit-binding", rig.editBinding},
		} {
			b.Run(sc.name, func(b *testing.B) {
				mark := lg.mark()
				var results []writeTiming
				for range writes {
					p := sc.write(b)
					if b.Failed() {
						return
					}
					results = append(results, rig.await(b, p))
					if b.Failed() {
						return
					}
					time.Sleep(writeGap)
				}
				reportTimings(b, variant+" "+sc.name, results)
				lg.report(b, mark)
			})
		}
	}
	b.Run("idle", func(b *testing.B) { scenarios(b, "idle", nil) })
	b.Run("load", func(b *testing.B) {
		lg := startLoad(b, rig, workers)
		defer lg.stop()
		scenarios(b, "load", lg)
	})
}

// writeGap separates two measured writes, so that each starts on a replica that has finished
// with the previous one (including the leader's status write and its watch event).
const writeGap = 50 * time.Millisecond

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func readAll(r *http.Request) string {
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

// ---------------------------------------------------------------------------------------
// The world.

type worldConfig struct {
	bindings, credentials int
	authorizerURL         string
}

type world struct {
	worldConfig
	namespaces   []string
	bindingsPer  int // APIBindings api-0..api-(bindingsPer-1) in each namespace
	credsPer     int // Credentials cred-0..cred-(credsPer-1) in each namespace
	objects      int
	loadTook     time.Duration
	bindingHosts []string // one host per binding, to check the world is complete
}

const (
	goodToken = "t0k"
	codePad   = "-0123456789abcdef-0123456789abcdef"
)

func benchHost(ns string, j int) string   { return fmt.Sprintf("svc-%d.%s.example.com", j, ns) }
func benchAppKey(ns string, c int) string { return fmt.Sprintf("%s-%d", ns, c) }
func benchCode(ns string, c int) string   { return fmt.Sprintf("code-%s-%d%s", ns, c, codePad) }

// The world's objects follow authz/compile's benchmark world: half the bindings select the
// gold Credentials of their namespace by label, half name two; every binding also needs the
// namespace's CustomAuthorizer; every fourth Credential has an AppCode.
func benchSecret(ns, name, appKey, code string) *corev1.Secret {
	data := map[string]string{"appKey": appKey, "appSecret": "secret-" + appKey + "-0123456789"}
	if code != "" {
		data["appCodes"] = code
	}
	return secret(ns, name, data)
}

func benchCredential(ns, name, secretName string, gold bool) *authv1alpha1.Credential {
	c := credential(ns, name, secretName)
	c.Labels = map[string]string{"tier": "silver"}
	if gold {
		c.Labels["tier"] = "gold"
	}
	return c
}

func benchBinding(ns string, j, credsPer int) *authv1alpha1.APIBinding {
	b := binding(ns, fmt.Sprintf("api-%d", j), benchHost(ns, j), "/", func(s *authv1alpha1.APIBindingSpec) {
		s.Hosts = append(s.Hosts, "*."+ns+".example.com")
		s.Routes = []authv1alpha1.Route{
			{Path: fmt.Sprintf("/v1/api-%d", j), Match: authv1alpha1.PathMatchPrefix, Methods: []authv1alpha1.HTTPMethod{"GET", "POST"}},
			{Path: fmt.Sprintf("/v1/api-%d/export", j), Match: authv1alpha1.PathMatchExact},
			{Path: fmt.Sprintf("/v2/api-%d", j), Match: authv1alpha1.PathMatchPrefix},
		}
		s.App = &authv1alpha1.AppAuth{Methods: []authv1alpha1.AppAuthMethod{authv1alpha1.AppAuthSignature, authv1alpha1.AppAuthAppCode}}
		if j%2 == 0 {
			s.App.CredentialSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "gold"}}
		} else {
			s.App.Credentials = []string{fmt.Sprintf("cred-%d", (10*j)%credsPer), fmt.Sprintf("cred-%d", (10*j+1)%credsPer)}
		}
		s.CustomAuthorizer = &authv1alpha1.LocalObjectReference{Name: "authz"}
	})
	return b
}

func benchAuthorizer(ns, url string) *authv1alpha1.CustomAuthorizer {
	a := authorizer(ns, "authz")
	a.Spec.URL = url
	a.Spec.Cache = &authv1alpha1.AuthorizerCache{TTL: &metav1.Duration{Duration: time.Hour}}
	return a
}

// createAll creates objs with 16 parallel clients, retrying transient failures.
func createAll(b *testing.B, objs func(yield func(client.Object) bool)) int {
	ctx := context.Background()
	ch := make(chan client.Object, 256)
	var wg sync.WaitGroup
	var failed sync.Once
	for range 16 {
		wg.Go(func() {
			for o := range ch {
				var err error
				for attempt := range 5 {
					if err = k8s.Create(ctx, o); err == nil || (attempt > 0 && apierrors.IsAlreadyExists(err)) {
						err = nil
						break
					}
					time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
				}
				if err != nil {
					failed.Do(func() { b.Errorf("create %T %s/%s: %v", o, o.GetNamespace(), o.GetName(), err) })
				}
			}
		})
	}
	n := 0
	for o := range objs {
		ch <- o
		n++
	}
	close(ch)
	wg.Wait()
	return n
}

// loadWorld creates the world and waits until the package's replica has it all in its
// snapshot and has finished writing the statuses.
func loadWorld(b *testing.B, cfg worldConfig) *world {
	k := max(1, cfg.bindings/10)
	w := &world{worldConfig: cfg, bindingsPer: max(1, cfg.bindings/k), credsPer: max(1, cfg.credentials/k)}
	start := time.Now()
	// Namespaces first, in parallel.
	names := make([]string, k)
	for i := range k {
		names[i] = fmt.Sprintf("pb%s-%d", strconv.FormatInt(start.UnixNano()%1e6, 36), i)
	}
	w.objects += createAll(b, func(yield func(client.Object) bool) {
		for _, n := range names {
			if !yield(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}) {
				return
			}
		}
	})
	w.namespaces = names
	for _, ns := range names {
		for j := range w.bindingsPer {
			w.bindingHosts = append(w.bindingHosts, benchHost(ns, j))
		}
	}
	w.objects += createAll(b, func(yield func(client.Object) bool) {
		// Round-robin over the namespaces so that every one fills up at the same pace.
		for _, ns := range names {
			if !yield(benchAuthorizer(ns, cfg.authorizerURL)) {
				return
			}
		}
		for c := range w.credsPer {
			for _, ns := range names {
				code := ""
				if c%4 == 0 {
					code = benchCode(ns, c)
				}
				if !yield(benchSecret(ns, fmt.Sprintf("keys-%d", c), benchAppKey(ns, c), code)) ||
					!yield(benchCredential(ns, fmt.Sprintf("cred-%d", c), fmt.Sprintf("keys-%d", c), c%2 == 0)) {
					return
				}
			}
		}
		for j := range w.bindingsPer {
			for _, ns := range names {
				if !yield(benchBinding(ns, j, w.credsPer)) {
					return
				}
			}
		}
	})
	if b.Failed() {
		return w
	}
	b.Logf("created %d objects in %s; waiting for the elected replica", w.objects, time.Since(start).Round(time.Second))
	deadline := time.Now().Add(60 * time.Minute)
	for !w.complete(policy.Snapshot()) {
		if time.Now().After(deadline) {
			b.Fatal("the world never reached the snapshot")
		}
		time.Sleep(time.Second)
	}
	waitStatusesSettled(b, deadline)
	w.loadTook = time.Since(start)
	return w
}

// complete reports whether s holds every credential and binding host of the world.
func (w *world) complete(s *compile.Snapshot) bool {
	if s == nil {
		return false
	}
	for _, ns := range w.namespaces {
		for c := range w.credsPer {
			if s.CredentialByAppKey(benchAppKey(ns, c)) == nil {
				return false
			}
		}
	}
	for _, h := range w.bindingHosts {
		if s.Host(h) == nil {
			return false
		}
	}
	return true
}

// waitStatusesSettled waits until the elected writer has written the statuses of everything
// just created: its write count stands still for three seconds.
func waitStatusesSettled(b *testing.B, deadline time.Time) {
	var last float64 = -1
	for settled := 0; settled < 3; {
		time.Sleep(time.Second)
		n := statusWriteCount(b)
		if n == last {
			settled++
		} else {
			settled, last = 0, n
		}
		if time.Now().After(deadline) {
			b.Fatal("status writes never settled")
		}
	}
}

// statusWriteCount sums portcullis_status_writes_total over its results.
func statusWriteCount(tb testing.TB) float64 {
	mfs, err := metrics.Registry.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == "portcullis_status_writes_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// ---------------------------------------------------------------------------------------
// The measured replica.

// rig is the replica under measurement with what watches it.
type rig struct {
	w      *world
	policy *controllers.Policy
	az     *authzclient.Client
	builds *buildLog

	compile, startup           time.Duration
	rssMB, hwmMB, replicaMB    float64
	current                    atomic.Pointer[probe]      // decided on every build until it changes
	watched                    atomic.Pointer[probe]      // its events timestamped until the next write
	created                    []*authv1alpha1.Credential // by createCredential, for disableCredential
	nextCred, nextEdit, seqCap int
	edited                     map[types.NamespacedName]bool // bindings whose route is on /v3
}

// startBenchReplica starts the replica to measure once the world is settled: a manager with its
// own cache and policy, kept from the status writes by a Lease another holder owns.
func startBenchReplica(b *testing.B, w *world, az *authzclient.Client) *rig {
	ctx := context.Background()
	cs := kubernetes.NewForConfigOrDie(restConfig)
	leaseNS, leaseName := w.namespaces[0], "portcullis-bench"
	now := metav1.NewMicroTime(time.Now())
	if _, err := cs.CoordinationV1().Leases(leaseNS).Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: leaseNS, Name: leaseName},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr("the-elected-replica"), LeaseDurationSeconds: ptr(int32(86400)),
			AcquireTime: &now, RenewTime: &now},
	}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}

	runtime.GC()
	debug.FreeOSMemory()
	rssBefore, _ := procStatus(b)

	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                  controllers.Scheme(),
		Cache:                   controllers.CacheOptions(""),
		Metrics:                 metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:  "0",
		LeaderElection:          true,
		LeaderElectionID:        leaseName,
		LeaderElectionNamespace: leaseNS,
		Controller:              ctrlconfig.Controller{SkipNameValidation: ptr(true)},
		// Start's error is checked; the log would only say, at the end, that the election
		// this replica never won was "lost".
		Logger: logr.New(quiet{}),
	})
	if err != nil {
		b.Fatal(err)
	}
	r := &rig{w: w, az: az, builds: &buildLog{took: map[uint64]time.Duration{}}, edited: map[types.NamespacedName]bool{}}
	r.policy = controllers.NewPolicy(logr.New(r.builds))
	r.policy.OnBuild(r.onBuild)
	if _, err := controllers.SetupKubernetes(mgr, r.policy, ""); err != nil {
		b.Fatal(err)
	}
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	// PORTCULLIS_BENCH_START_PROFILE names a file for a CPU profile of this process from the
	// replica's start until it is ready (the list, the informers, the compile).
	stopProfile := func() {}
	if path := os.Getenv("PORTCULLIS_BENCH_START_PROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		stopProfile = func() {
			pprof.StopCPUProfile()
			if err := f.Close(); err != nil {
				b.Error(err)
			}
		}
	}
	start := time.Now()
	go func() { done <- mgr.Start(mctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("replica stopped with %v", err)
		}
	})
	for !r.policy.Ready() {
		if time.Since(start) > 30*time.Minute {
			b.Fatal("the replica never became ready")
		}
		time.Sleep(time.Millisecond)
	}
	r.startup = time.Since(start)
	stopProfile()
	r.compile = r.builds.first()
	if !w.complete(r.policy.Snapshot()) {
		b.Fatal("the replica's first snapshot misses part of the world")
	}
	select {
	case <-mgr.Elected():
		b.Fatal("the measured replica was elected: it would write statuses")
	default:
	}

	runtime.GC()
	debug.FreeOSMemory()
	rss, hwm := procStatus(b)
	r.rssMB, r.hwmMB, r.replicaMB = rss, hwm, rss-rssBefore

	// A second handler on the replica's shared informers timestamps each event's arrival.
	for _, obj := range []client.Object{&authv1alpha1.Credential{}, &authv1alpha1.APIBinding{}} {
		inf, err := mgr.GetCache().GetInformer(ctx, obj)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { r.arrived(o) },
			UpdateFunc: func(_, o any) { r.arrived(o) },
		}); err != nil {
			b.Fatal(err)
		}
	}
	// Secrets for the Credentials the create scenarios add, created now (not measured) so
	// that each Credential finds its Secret in the replica's policy.
	r.seqCap = 4*envInt("PORTCULLIS_BENCH_WRITES", 100) + 8
	n := createAll(b, func(yield func(client.Object) bool) {
		for i := range r.seqCap {
			ns := w.namespaces[i%len(w.namespaces)]
			if !yield(benchSecret(ns, fmt.Sprintf("new-keys-%d", i), benchAppKey(ns, 1_000_000+i), newCode(ns, i))) {
				return
			}
		}
	})
	last := compile.ObjectKey{Kind: compile.KindSecret,
		NamespacedName: types.NamespacedName{Namespace: w.namespaces[(n-1)%len(w.namespaces)], Name: fmt.Sprintf("new-keys-%d", n-1)}}
	for !r.policy.Has(last) {
		time.Sleep(10 * time.Millisecond)
	}
	waitStatusesSettled(b, time.Now().Add(10*time.Minute))
	return r
}

func newCode(ns string, i int) string { return fmt.Sprintf("newcode-%s-%d%s", ns, i, codePad) }

// loadAverage is the machine's one-minute load average (0 when unknown).
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// procStatus returns VmRSS and VmHWM of this process in MB.
func procStatus(tb testing.TB) (rss, hwm float64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Logf("no /proc/self/status: %v", err)
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			hwm = kb / 1024
		}
	}
	return rss, hwm
}

// buildLog is the replica policy's logger: it keeps the compile time of each build from the
// policy's own "Built snapshot" record (logged at V(1) after every build).
type buildLog struct {
	mu      sync.Mutex
	took    map[uint64]time.Duration // by snapshot version, the recent ones
	initial time.Duration
}

func (l *buildLog) first() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.initial
}

func (l *buildLog) tookFor(version uint64) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d, ok := l.took[version]
	return d, ok
}

func (l *buildLog) Init(logr.RuntimeInfo)  {}
func (l *buildLog) Enabled(level int) bool { return level <= 1 }
func (l *buildLog) Info(_ int, msg string, kv ...any) {
	if msg != "Built snapshot" {
		return
	}
	var version uint64
	var took time.Duration
	for i := 0; i+1 < len(kv); i += 2 {
		switch kv[i] {
		case "version":
			version, _ = kv[i+1].(uint64)
		case "took":
			took, _ = kv[i+1].(time.Duration)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.took) == 0 && l.initial == 0 {
		l.initial = took
	}
	if len(l.took) > 1000 {
		clear(l.took)
	}
	l.took[version] = took
}
func (l *buildLog) Error(error, string, ...any)    {}
func (l *buildLog) WithValues(...any) logr.LogSink { return l }
func (l *buildLog) WithName(string) logr.LogSink   { return l }

// quiet is a logr sink that drops everything (controller-runtime replaces logr.Discard() with
// its global logger).
type quiet struct{}

func (quiet) Init(logr.RuntimeInfo)            {}
func (quiet) Enabled(int) bool                 { return false }
func (quiet) Info(int, string, ...any)         {}
func (quiet) Error(error, string, ...any)      {}
func (q quiet) WithValues(...any) logr.LogSink { return q }
func (q quiet) WithName(string) logr.LogSink   { return q }

// ---------------------------------------------------------------------------------------
// Probes: one API write and the request whose answer it changes.

type probe struct {
	key       types.NamespacedName // the object written
	req       engine.Request       // the request whose decision the write changes
	wantAllow bool                 // the decision after the write

	issued, returned time.Time
	rv               string // resourceVersion the write produced

	mu       sync.Mutex
	arrivals []arrival
	decided  time.Time
	version  uint64
	by       string
	done     chan struct{}
	stop     func() // ends the poll
}

type arrival struct {
	rv string
	at time.Time
}

// changed reports whether d is the decision the write leads to.
func (p *probe) changed(d *engine.Decision) bool { return d.Allowed() == p.wantAllow }

func (p *probe) mark(at time.Time, version uint64, by string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.decided.IsZero() {
		close(p.done)
	} else if !at.Before(p.decided) {
		return
	}
	p.decided, p.version, p.by = at, version, by
}

func (r *rig) decide(s *compile.Snapshot, req engine.Request) engine.Decision {
	e := &engine.Engine{Snapshot: func() *compile.Snapshot { return s }, Authorizer: r.az}
	return e.Decide(context.Background(), &req)
}

// onBuild decides the current probe's request on every snapshot the replica publishes
// (listeners run right after the atomic store).
func (r *rig) onBuild(s *compile.Snapshot, _ compile.Changes) {
	at := time.Now()
	p := r.current.Load()
	if p == nil {
		return
	}
	if d := r.decide(s, p.req); p.changed(&d) {
		p.mark(at, s.Version, "listener")
	}
}

func (r *rig) arrived(o any) {
	p := r.watched.Load()
	if p == nil {
		return
	}
	obj, ok := o.(client.Object)
	if !ok || obj.GetName() != p.key.Name || obj.GetNamespace() != p.key.Namespace {
		return
	}
	at := time.Now()
	p.mu.Lock()
	p.arrivals = append(p.arrivals, arrival{rv: obj.GetResourceVersion(), at: at})
	p.mu.Unlock()
}

// arm checks that the request is still answered the old way, then makes p the probe the
// listener, the informer handler and a 100 µs poll watch.
func (r *rig) arm(b *testing.B, p *probe) {
	b.Helper()
	p.done = make(chan struct{})
	if d := r.decide(r.policy.Snapshot(), p.req); p.changed(&d) {
		b.Fatalf("%s: the request already gets the answer the write is to give (%s)", p.key, d.Code)
	}
	r.current.Store(p)
	r.watched.Store(p)
	quit := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		var last *compile.Snapshot
		for {
			select {
			case <-quit:
				return
			case <-p.done:
				return
			default:
			}
			if s := r.policy.Snapshot(); s != last {
				at := time.Now()
				last = s
				if d := r.decide(s, p.req); p.changed(&d) {
					p.mark(at, s.Version, "poll")
				}
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	p.stop = func() { close(quit); <-exited }
}

// write issues one API write under probe p.
func (r *rig) write(b *testing.B, p *probe, call func() (client.Object, error)) *probe {
	b.Helper()
	r.arm(b, p)
	p.issued = time.Now()
	obj, err := call()
	p.returned = time.Now()
	if err != nil {
		p.stop()
		r.current.Store(nil)
		b.Fatalf("write %s: %v", p.key, err)
	}
	p.rv = obj.GetResourceVersion()
	return p
}

func appCodeRequest(host, path, code string) engine.Request {
	return engine.Request{Method: "GET", Authority: host, Target: path, Headers: []engine.Header{
		{Name: "x-app-code", Value: code}, {Name: "token", Value: goodToken},
		{Name: "x-request-id", Value: "propagation-probe"}, {Name: "user-agent", Value: "bench"},
	}}
}

// warm makes sure the request to binding j of ns is allowed with a world credential (which
// also puts the authorizer's answer for that binding in the cache, as traffic would).
func (r *rig) warm(b *testing.B, ns string, j int) {
	b.Helper()
	req := appCodeRequest(benchHost(ns, j), fmt.Sprintf("/v1/api-%d/items", j), benchCode(ns, 0))
	if d := r.decide(r.policy.Snapshot(), req); !d.Allowed() {
		b.Fatalf("%s: a world request is denied: %s %s", benchHost(ns, j), d.Code, d.Message)
	}
}

func (r *rig) createCredential(b *testing.B) *probe {
	if r.nextCred >= r.seqCap {
		b.Fatal("out of prepared Secrets")
	}
	i := r.nextCred
	r.nextCred++
	ns := r.w.namespaces[i%len(r.w.namespaces)]
	r.warm(b, ns, 0)
	c := benchCredential(ns, fmt.Sprintf("new-%d", i), fmt.Sprintf("new-keys-%d", i), true)
	p := &probe{key: client.ObjectKeyFromObject(c), wantAllow: true,
		req: appCodeRequest(benchHost(ns, 0), "/v1/api-0/items", newCode(ns, i))}
	r.created = append(r.created, c)
	return r.write(b, p, func() (client.Object, error) { return c, k8s.Create(context.Background(), c) })
}

func (r *rig) disableCredential(b *testing.B) *probe {
	if len(r.created) == 0 {
		b.Fatal("no created credential left to disable")
	}
	c := r.created[0]
	r.created = r.created[1:]
	i, _ := strconv.Atoi(strings.TrimPrefix(c.Name, "new-"))
	p := &probe{key: client.ObjectKeyFromObject(c), wantAllow: false,
		req: appCodeRequest(benchHost(c.Namespace, 0), "/v1/api-0/items", newCode(c.Namespace, i))}
	return r.write(b, p, func() (client.Object, error) {
		patch := client.MergeFrom(c.DeepCopy())
		c.Spec.Disabled = true
		return c, k8s.Patch(context.Background(), c, patch)
	})
}

func (r *rig) editBinding(b *testing.B) *probe {
	// Even bindings (they select gold credentials, so cred-0's AppCode is accepted), spread
	// over the namespaces; a binding is moved back when its turn comes again.
	e := r.nextEdit
	r.nextEdit++
	ns := r.w.namespaces[e%len(r.w.namespaces)]
	evens := (r.w.bindingsPer + 1) / 2
	j := 2 * ((e / len(r.w.namespaces)) % evens)
	r.warm(b, ns, j)
	key := types.NamespacedName{Namespace: ns, Name: fmt.Sprintf("api-%d", j)}
	toV3 := !r.edited[key]
	r.edited[key] = toV3
	p := &probe{key: key, wantAllow: toV3, req: appCodeRequest(benchHost(ns, j), fmt.Sprintf("/v3/api-%d/items", j), benchCode(ns, 0))}
	var bd authv1alpha1.APIBinding
	if err := k8s.Get(context.Background(), key, &bd); err != nil {
		b.Fatal(err)
	}
	return r.write(b, p, func() (client.Object, error) {
		patch := client.MergeFrom(bd.DeepCopy())
		bd.Spec.Routes[2].Path = fmt.Sprintf("/v2/api-%d", j)
		if toV3 {
			bd.Spec.Routes[2].Path = fmt.Sprintf("/v3/api-%d", j)
		}
		return &bd, k8s.Patch(context.Background(), &bd, patch)
	})
}

// writeTiming is one write's propagation, from the moment it was issued.
type writeTiming struct {
	total, api, watch, publish, build time.Duration
	watchKnown, buildKnown            bool
}

// await waits for p's changed decision and returns its timings.
func (r *rig) await(b *testing.B, p *probe) writeTiming {
	b.Helper()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
	}
	p.stop()
	r.current.Store(nil)
	select {
	case <-p.done:
	default:
		b.Fatalf("%s: the write never changed the decision", p.key)
	}
	// The timestamping handler is a second listener of the informer: it may be handed the
	// event after the reconciler's handler has had it built and published. The build's log
	// record follows the listeners too.
	var t writeTiming
	for deadline := time.Now().Add(writeGap); ; time.Sleep(time.Millisecond) {
		p.mu.Lock()
		t = writeTiming{total: p.decided.Sub(p.issued), api: p.returned.Sub(p.issued)}
		for _, a := range p.arrivals {
			if a.rv == p.rv {
				// publish is 0 when this handler was handed the event after the decision changed.
				t.watch, t.publish, t.watchKnown = a.at.Sub(p.issued), max(0, p.decided.Sub(a.at)), true
			}
		}
		p.mu.Unlock()
		t.build, t.buildKnown = r.builds.tookFor(p.version)
		if (t.watchKnown && t.buildKnown) || time.Now().After(deadline) {
			return t
		}
	}
}

// ---------------------------------------------------------------------------------------
// Reporting.

// pct is the nearest-rank percentile of sorted ds.
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := (p*len(ds)+99)/100 - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func reportTimings(b *testing.B, name string, ts []writeTiming) {
	col := func(f func(writeTiming) (time.Duration, bool)) []time.Duration {
		var ds []time.Duration
		for _, t := range ts {
			if d, ok := f(t); ok {
				ds = append(ds, d)
			}
		}
		slices.Sort(ds)
		return ds
	}
	total := col(func(t writeTiming) (time.Duration, bool) { return t.total, true })
	api := col(func(t writeTiming) (time.Duration, bool) { return t.api, true })
	watch := col(func(t writeTiming) (time.Duration, bool) { return t.watch, t.watchKnown })
	publish := col(func(t writeTiming) (time.Duration, bool) { return t.publish, t.watchKnown })
	build := col(func(t writeTiming) (time.Duration, bool) { return t.build, t.buildKnown })
	b.ReportMetric(ms(pct(total, 50)), "p50-ms")
	b.ReportMetric(ms(pct(total, 99)), "p99-ms")
	b.ReportMetric(ms(total[len(total)-1]), "max-ms")
	for _, m := range []struct {
		name string
		ds   []time.Duration
	}{{"api", api}, {"watch", watch}, {"publish", publish}, {"build", build}} {
		b.ReportMetric(ms(pct(m.ds, 50)), m.name+"-ms")
		b.ReportMetric(ms(pct(m.ds, 99)), m.name+"-p99-ms")
	}
	b.ReportMetric(float64(len(ts)), "writes")
	// The machine is shared: its load says how much of the figure is contention.
	b.ReportMetric(loadAverage(), "loadavg")
	line := func(what string, ds []time.Duration) string {
		if len(ds) == 0 {
			return fmt.Sprintf("  %-34s (not observed)", what)
		}
		return fmt.Sprintf("  %-34s p50 %7.3f ms  p99 %7.3f ms  max %7.3f ms  (n=%d)", what, ms(pct(ds, 50)), ms(pct(ds, 99)), ms(ds[len(ds)-1]), len(ds))
	}
	b.Logf("%s, %d writes (machine load average %.1f on %d CPUs):\n%s\n%s\n%s\n%s\n%s", name, len(ts), loadAverage(), runtime.NumCPU(),
		line("write issued -> decision changed", total),
		line("  API call returned", api),
		line("  event at the informer handler", watch),
		line("  event -> decision (queue+build)", publish),
		line("  compile.Build of that snapshot", build))
}

// ---------------------------------------------------------------------------------------
// Load: Envoy-shaped CheckRequests through the ext_authz gRPC server on loopback.

type load struct {
	b      *testing.B
	cancel context.CancelFunc
	wg     sync.WaitGroup
	n, bad atomic.Int64 // checks answered, checks not allowed (there should be none)

	mu  sync.Mutex
	lat []time.Duration // every 16th round trip, in completion order
}

// loadMark is the load's counters at the start of a scenario.
type loadMark struct {
	at  time.Time
	n   int64
	lat int
}

// envoyCheck is a two-factor CheckRequest as Envoy's HTTP ext_authz filter sends it.
func envoyCheck(host, path, code string) *authv3.CheckRequest {
	return enginetest.EnvoyRequest("GET", host, path, map[string]string{
		"x-request-id": "3f1c6b9e-" + code[:12], "user-agent": "okhttp/4.12.0", "x-app-code": code, "token": goodToken})
}

// startLoad serves the replica's policy through extauthz and starts workers goroutines
// sending requests (allowed ones, over the world's bindings, with two factors).
func startLoad(b *testing.B, r *rig, workers int) *load {
	eng := &engine.Engine{Snapshot: r.policy.Snapshot, Authorizer: r.az}
	gs, _ := extauthz.NewGRPCServer(&extauthz.Server{Engine: eng})
	c := authv3.NewAuthorizationClient(enginetest.Serve(b, gs))

	rng := rand.New(rand.NewPCG(1, 2))
	reqs := make([]*authv3.CheckRequest, 1024)
	for i := range reqs {
		ns := r.w.namespaces[rng.IntN(len(r.w.namespaces))]
		j := 2 * rng.IntN((r.w.bindingsPer+1)/2)
		cred := 4 * rng.IntN((r.w.credsPer+3)/4)
		reqs[i] = envoyCheck(benchHost(ns, j), fmt.Sprintf("/v1/api-%d/orders/%d", j, i), benchCode(ns, cred))
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel, b: b}
	// Warm the authorizer cache as steady traffic would have.
	for _, q := range reqs {
		if _, err := c.Check(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	for w := range workers {
		l.wg.Go(func() {
			for i := w; ; i++ {
				q := reqs[i%len(reqs)]
				t0 := time.Now()
				resp, err := c.Check(ctx, q)
				if ctx.Err() != nil {
					return
				}
				if i%16 == 0 {
					d := time.Since(t0)
					l.mu.Lock()
					l.lat = append(l.lat, d)
					l.mu.Unlock()
				}
				l.n.Add(1)
				if err != nil || codes.Code(resp.GetStatus().GetCode()) != codes.OK {
					l.bad.Add(1)
				}
			}
		})
	}
	time.Sleep(2 * time.Second) // let the load reach its steady state
	return l
}

func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
	if n := l.bad.Load(); n > 0 {
		l.b.Errorf("load: %d of %d checks were not allowed", n, l.n.Load())
	}
}

func (l *load) mark() loadMark {
	if l == nil {
		return loadMark{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return loadMark{at: time.Now(), n: l.n.Load(), lat: len(l.lat)}
}

// report adds the load served since m to b: checks per second and the round trip's p50/p99.
func (l *load) report(b *testing.B, m loadMark) {
	if l == nil {
		return
	}
	l.mu.Lock()
	lat := slices.Clone(l.lat[m.lat:])
	l.mu.Unlock()
	slices.Sort(lat)
	rate := float64(l.n.Load()-m.n) / time.Since(m.at).Seconds()
	b.ReportMetric(rate, "checks/s")
	b.ReportMetric(ms(pct(lat, 99)), "check-p99-ms")
	b.Logf("under load: %.0f checks/s through ext_authz gRPC on loopback, round trip p50 %.3f ms p99 %.3f ms, %d not allowed",
		rate, ms(pct(lat, 50)), ms(pct(lat, 99)), l.bad.Load())
}
