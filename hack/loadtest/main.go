// Command loadtest benchmarks Portcullis end to end, side by side with a protocol floor, and
// soaks it.
//
// Every server is its own OS process on loopback, so CPU and RSS are measured per server:
//
//   - FLOOR: a minimal Envoy ext_authz v3 gRPC server answering OK without looking at the
//     request (this program re-executed as `loadtest floor`): what the protocol, gRPC and the
//     load generator cost by themselves;
//   - the real `portcullis serve --source=files` over a generated policy world (Secrets,
//     Credentials, CustomAuthorizers, APIBindings written as YAML to a temp dir): small
//     (10 bindings, 100 credentials) and large (10,000 bindings, 100,000 credentials);
//   - a custom authorizer answering at once in the APIG format (`loadtest authorizer`).
//
// One load generator (in this process) sends Envoy-shaped CheckRequests at a fixed
// concurrency (-streams over -conns gRPC connections), per scenario: two-factor (AppCode +
// cached authorizer), signature (really signed, SDK-HMAC-SHA256), appcode, two-factor-uncached
// (a new identity every request, so every request calls the authorizer), anonymous and
// no-route (404). After a warm-up, -duration of measurement is split into -rounds alternating
// rounds (FLOOR, Portcullis, FLOOR, ...) so that drift on a shared machine hits both. Every
// answer is checked against the scenario's expected one; any unexpected answer makes the
// program exit 1. It reports throughput, latency quantiles, server CPU per 1,000 checks
// (from /proc/<pid>/stat), peak RSS (VmHWM), Portcullis's heap after each scenario (the
// collector's goal, the heap in use, freed memory not yet returned), the ratios to FLOOR next
// to the targets, the cold start of each world, and one benchstat-friendly BenchmarkLoad
// line per result.
//
// Run it with
//
//	make bench-e2e                          # builds bin/portcullis, both worlds
//	go run ./hack/loadtest -worlds=small -duration=4s -portcullis=bin/portcullis
//	go run ./hack/loadtest -scenarios=two-factor -cpuprofile=two-factor -profile-dir=/tmp/prof
//
// and the soak (allows, denies and authorizer faults — timeouts, 5xx, garbage, resets — for
// a while; fails if a fault is allowed without x-portcullis-degraded, or goroutines or RSS of
// Portcullis have grown past a bound once the load stops) with
//
//	make soak SOAK_DURATION=10m
//	go run ./hack/loadtest soak -duration=1m -portcullis=bin/portcullis
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
)

func main() {
	args := os.Args[1:]
	cmd := "bench"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "bench":
		err = runBench(args)
	case "soak":
		err = runSoak(args)
	case "floor":
		err = runFloor(args)
	case "authorizer":
		err = runAuthorizer(args)
	default:
		err = fmt.Errorf("unknown command %q (bench, soak, floor, authorizer)", cmd)
	}
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
		}
		os.Exit(1)
	}
}

// common are the flags bench and soak share.
type common struct {
	portcullis string
	streams    int
	conns      int
	keep       bool
	memLimit   string
	skipDecode bool
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.portcullis, "portcullis", "bin/portcullis", "the portcullis binary")
	fs.IntVar(&c.streams, "streams", 32, "concurrent Check calls in flight (closed loop)")
	fs.IntVar(&c.conns, "conns", 2, "gRPC connections per server, shared by the streams")
	fs.BoolVar(&c.keep, "keep", false, "keep the temp dir (generated policy, server logs)")
	fs.BoolVar(&c.skipDecode, "floor-skip-decode", false, "run a FLOOR that does not even decode the CheckRequest (it answers OK to the bytes), instead of one built on the generated code, which decodes it as any Go ext_authz server does")
	fs.StringVar(&c.memLimit, "portcullis-gomemlimit", "", "GOMEMLIMIT of the portcullis process, as serve's --memory-limit-ratio sets it in a container with a memory limit (e.g. 230MiB: 0.9 of 256 MiB); empty: none")
}

// rig is the processes of a run.
type rig struct {
	self, tmp  string
	authz      *proc
	authzURL   string
	floor      *proc
	floorT     *target
	floorConns []*grpc.ClientConn
}

func newRig(ctx context.Context, c *common, withFloor bool) (*rig, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "portcullis-loadtest-")
	if err != nil {
		return nil, err
	}
	r := &rig{self: self, tmp: tmp}
	addr, err := freeAddr()
	if err != nil {
		return r, err
	}
	if r.authz, err = start("authorizer", filepath.Join(tmp, "authorizer.log"), self, "authorizer", "-addr", addr); err != nil {
		return r, err
	}
	r.authzURL = "http://" + addr + "/verify"
	if !withFloor {
		return r, nil
	}
	if addr, err = freeAddr(); err != nil {
		return r, err
	}
	if r.floor, err = start("floor", filepath.Join(tmp, "floor.log"), self, "floor", "-addr", addr, "-skip-decode="+strconv.FormatBool(c.skipDecode)); err != nil {
		return r, err
	}
	clients, conns, err := dial(addr, c.conns)
	if err != nil {
		return r, err
	}
	r.floorConns = conns
	r.floorT = &target{name: "floor", floor: true, pid: r.floor.pid(), clients: clients}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for { // wait for the floor to answer
		if _, err := clients[0].Check(wctx, &authv3.CheckRequest{}); err == nil {
			return r, nil
		} else if wctx.Err() != nil {
			return r, fmt.Errorf("floor does not answer: %w", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *rig) close(keep bool) {
	for _, c := range r.floorConns {
		_ = c.Close()
	}
	for _, p := range []*proc{r.floor, r.authz} {
		if p != nil {
			p.stop()
		}
	}
	if keep {
		fmt.Println("kept", r.tmp)
	} else {
		_ = os.RemoveAll(r.tmp)
	}
}

// server is a running portcullis.
type server struct {
	*proc
	grpcAddr, healthAddr, metricsAddr, pprofAddr string
	t                                            *target
	conns                                        []*grpc.ClientConn
	ready, firstCheck                            time.Duration // cold start
	coldCPU                                      time.Duration // CPU time used until firstCheck
}

// startPortcullis writes w, starts portcullis on it and waits until /readyz is 200 and a
// Check on the last binding's route answers as expected.
func (r *rig) startPortcullis(ctx context.Context, c *common, w world, pprof bool) (*server, error) {
	dir := filepath.Join(r.tmp, "policy-"+w.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := w.write(dir, r.authzURL); err != nil {
		return nil, err
	}
	s := &server{}
	var err error
	for _, a := range []*string{&s.grpcAddr, &s.healthAddr, &s.metricsAddr, &s.pprofAddr} {
		if *a, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	args := []string{"serve", "--source=files", "--files=" + dir, "--grpc-addr=" + s.grpcAddr, "--http-addr=127.0.0.1:0",
		"--metrics-addr=" + s.metricsAddr, "--health-addr=" + s.healthAddr}
	if pprof {
		args = append(args, "--pprof-addr="+s.pprofAddr)
	}
	clients, conns, err := dial(s.grpcAddr, c.conns)
	if err != nil {
		return nil, err
	}
	s.conns = conns
	probe := (&builder{w: w, rng: newRand(7), now: time.Now()}).allow(w.nb-1, "probe")
	t0 := time.Now()
	var env []string
	if c.memLimit != "" {
		env = []string{"GOMEMLIMIT=" + c.memLimit}
	}
	if s.proc, err = startEnv("portcullis-"+w.name, filepath.Join(r.tmp, "portcullis-"+w.name+".log"), env, c.portcullis, args...); err != nil {
		return nil, err
	}
	s.t = &target{name: "portcullis", pid: s.pid(), clients: clients}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	fail := func(err error) (*server, error) {
		s.close()
		return nil, fmt.Errorf("%w\nportcullis log:\n%s", err, s.tail())
	}
	go func() { // a dead child ends the wait at once
		select {
		case <-s.done:
			cancel()
		case <-wctx.Done():
		}
	}()
	if err := waitHTTP(wctx, "http://"+s.healthAddr+"/readyz", 5*time.Millisecond); err != nil {
		return fail(err)
	}
	s.ready = time.Since(t0)
	for {
		resp, err := clients[0].Check(wctx, probe.req)
		if err == nil && verify(resp, &probe.want, "") == "" {
			break
		}
		if wctx.Err() != nil {
			return fail(fmt.Errorf("probe Check on %s: %v %v", w.host(w.nb-1), resp, err))
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.firstCheck = time.Since(t0)
	if ticks, err := cpuTicks(s.pid()); err == nil {
		s.coldCPU = time.Duration(ticks) * time.Second / clkTck
	}
	return s, nil
}

func (s *server) close() {
	for _, c := range s.conns {
		_ = c.Close()
	}
	if s.proc != nil {
		s.stop()
	}
}

type benchOptions struct {
	common
	worlds, scenarios   string
	duration, warmup    time.Duration
	rounds              int
	cpuprofile, profDir string
	enforce             bool
	coldStarts          int
}

// result is what one server did in one scenario.
type result struct {
	world, scenario, server string
	checks                  uint64
	elapsed                 time.Duration
	cpuTicks                uint64
	rss, rssNow             uint64 // VmHWM, VmRSS
	hist                    *hist
	unexpected              uint64
}

func (r *result) rate() float64 { return float64(r.checks) / r.elapsed.Seconds() }

// cpuPer1k is server CPU seconds per 1,000 checks.
func (r *result) cpuPer1k() float64 {
	return float64(r.cpuTicks) / clkTck / float64(r.checks) * 1000
}

func runBench(args []string) error {
	var o benchOptions
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	o.register(fs)
	fs.StringVar(&o.worlds, "worlds", "small,large", "policy worlds to run: small (10 bindings, 100 credentials), large (10,000 / 100,000)")
	fs.StringVar(&o.scenarios, "scenarios", strings.Join(scenarioNames, ","), "scenarios to run")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per scenario, FLOOR and Portcullis rounds together")
	fs.IntVar(&o.rounds, "rounds", 20, "alternating rounds the measured time is split into (FLOOR, Portcullis, FLOOR, ...); even")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "warm-up per server and scenario, not measured")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "scenario (or world/scenario) during which to fetch CPU and allocs profiles from portcullis (served on --pprof-addr)")
	fs.StringVar(&o.profDir, "profile-dir", "bin/profiles", "where -cpuprofile writes <world>-<scenario>-{cpu,allocs}.pprof")
	fs.IntVar(&o.coldStarts, "cold-starts", 3, "portcullis starts per world; the cold start reported is their median")
	fs.BoolVar(&o.enforce, "enforce", false, "also exit 1 when a target is missed (off by default: a shared machine is noisy)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.rounds < 2 || o.rounds%2 != 0 {
		return fmt.Errorf("-rounds must be even and at least 2")
	}
	scenarios := strings.Split(o.scenarios, ",")
	for _, sc := range scenarios {
		if !slices.Contains(scenarioNames, sc) {
			return fmt.Errorf("unknown scenario %q (have %v)", sc, scenarioNames)
		}
	}
	var ws []world
	for _, name := range strings.Split(o.worlds, ",") {
		w, ok := worlds[name]
		if !ok {
			return fmt.Errorf("unknown world %q (small, large)", name)
		}
		ws = append(ws, w)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	r, err := newRig(ctx, &o.common, true)
	if r != nil {
		defer r.close(o.keep)
	}
	if err != nil {
		return err
	}
	fmt.Printf("loadtest: %d streams over %d connections per server, %s measured per scenario in %d alternating rounds, %s warm-up; GOMAXPROCS of the servers = %d CPUs\n",
		o.streams, o.conns, o.duration, o.rounds, o.warmup, numCPU())
	var results []*result
	var colds []*server
	var coldWorlds []world
	var bad []string
	for _, w := range ws {
		profiling := o.cpuprofile != ""
		// Cold start is one sample per process: take several and keep the median.
		// Each but the last is stopped at once, so that the next starts on a quiet machine.
		var samples []*server
		n := max(o.coldStarts, 1)
		for i := range n {
			s, err := r.startPortcullis(ctx, &o.common, w, profiling)
			if err != nil {
				return err
			}
			if i < n-1 {
				s.close()
			}
			samples = append(samples, s)
		}
		s := samples[len(samples)-1] // the one that serves the scenarios
		firsts := make([]float64, len(samples))
		for i, p := range samples {
			firsts[i] = p.firstCheck.Seconds()
		}
		slices.SortFunc(samples, func(a, b *server) int { return cmp.Compare(a.firstCheck, b.firstCheck) })
		med := samples[len(samples)/2]
		s.ready, s.firstCheck, s.coldCPU = med.ready, med.firstCheck, med.coldCPU
		colds, coldWorlds = append(colds, s), append(coldWorlds, w)
		fmt.Printf("\n== world %s: %d bindings, %d credentials; cold start (median of %d: %s s): /readyz 200 after %.2f s, first Check as expected after %.2f s (%.2f CPU s)\n",
			w.name, w.nb, w.nc, len(samples), formatSeconds(firsts), s.ready.Seconds(), s.firstCheck.Seconds(), s.coldCPU.Seconds())
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "scenario\tserver\tchecks/s\tp50 µs\tp90 µs\tp99 µs\tp99.9 µs\tCPU ms/1k\tRSS MB\tpeak RSS MB\tunexpected\t")
		tw.Flush()
		for _, sc := range scenarios {
			entries, err := pool(w, sc, time.Now(), 42)
			if err != nil {
				s.close()
				return err
			}
			l := newLoad(o.streams, entries)
			targets := []*target{r.floorT, s.t}
			l.prime(ctx, s.t)
			for _, t := range targets {
				l.round(ctx, t, o.warmup)
			}
			l.reset()
			m0, err := metrics(s)
			if err != nil {
				s.close()
				return err
			}
			res := map[string]*result{}
			for _, t := range targets {
				res[t.name] = &result{world: w.name, scenario: sc, server: t.name}
			}
			per := o.duration / time.Duration(o.rounds)
			for i := range o.rounds {
				t := targets[i%2]
				before, err1 := cpuTicks(t.pid)
				took := l.round(ctx, t, per)
				after, err2 := cpuTicks(t.pid)
				if err := errors.Join(err1, err2); err != nil {
					s.close()
					return err
				}
				res[t.name].elapsed += took
				res[t.name].cpuTicks += after - before
			}
			if ctx.Err() != nil {
				s.close()
				return ctx.Err()
			}
			for _, t := range targets {
				rs := res[t.name]
				tl := l.total(t.name)
				rs.checks, rs.hist, rs.unexpected = tl.checks, &tl.hist, tl.unexpected
				rs.rss, _ = procStatus(t.pid, "VmHWM")
				rs.rssNow, _ = procStatus(t.pid, "VmRSS")
				results = append(results, rs)
				printRow(tw, rs)
			}
			printRatio(tw, res["floor"], res["portcullis"])
			tw.Flush()
			if m1, err := metrics(s); err == nil {
				hits := m1["portcullis_authorizer_cache_hits_total"] - m0["portcullis_authorizer_cache_hits_total"]
				misses := m1["portcullis_authorizer_cache_misses_total"] - m0["portcullis_authorizer_cache_misses_total"]
				var calls []string
				for k, v := range m1 {
					if o, ok := strings.CutPrefix(k, `portcullis_authorizer_calls_total{outcome="`); ok && v > m0[k] {
						calls = append(calls, fmt.Sprintf("%s %.0f", strings.TrimSuffix(o, `"}`), v-m0[k]))
					}
				}
				slices.Sort(calls)
				if hits+misses > 0 {
					fmt.Printf("    (authorizer during the Portcullis rounds: %.0f cache hits, %.0f misses; calls: %s)\n", hits, misses, strings.Join(calls, ", "))
				}
				// Where portcullis's RSS goes: the collector's goal (about twice the heap it
				// last marked, at GOGC=100), the heap in use, and freed spans not yet returned.
				mb := func(name string) float64 { return m1["go_memstats_"+name+"_bytes"] / (1 << 20) }
				fmt.Printf("    (portcullis memory at the end: RSS %.0f MB; heap goal %.0f MB, in use %.0f MB, allocated %.0f MB, idle not returned to the OS %.0f MB)\n",
					float64(res["portcullis"].rssNow)/(1<<20), mb("next_gc"), mb("heap_inuse"), mb("heap_alloc"), mb("heap_idle")-mb("heap_released"))
				// What the collector cost during the rounds, as the runtime counts CPU time
				// (its estimates, /cpu/classes): a share of the time its Ps were not idle.
				cpu := func(class string) float64 {
					k := "go_cpu_classes_" + class + "_cpu_seconds_total"
					return m1[k] - m0[k]
				}
				if busy := cpu("total") - cpu("idle"); busy > 0 {
					fmt.Printf("    (portcullis's collector during the rounds: %.0f cycles, %.1f%% of its CPU, of which mark assists %.1f%%)\n",
						m1["go_gc_cycles_total_gc_cycles_total"]-m0["go_gc_cycles_total_gc_cycles_total"],
						100*cpu("gc_total")/busy, 100*cpu("gc_mark_assist")/busy)
				}
			}
			l.mu.Lock()
			if l.badN > 0 {
				bad = append(bad, fmt.Sprintf("%s/%s: %d unexpected answers, e.g.:\n  %s", w.name, sc, l.badN, strings.Join(l.bad, "\n  ")))
			}
			l.mu.Unlock()
			if o.cpuprofile == sc || o.cpuprofile == w.name+"/"+sc {
				if err := profile(ctx, l, s, w, sc, o.profDir, max(5*time.Second, o.duration/2)); err != nil {
					s.close()
					return err
				}
			}
		}
		s.close()
	}
	fmt.Println()
	for _, rs := range results {
		fmt.Println(benchLine(rs))
	}
	missed := printTargets(results, colds, coldWorlds)
	if len(bad) > 0 {
		return fmt.Errorf("unexpected answers:\n%s", strings.Join(bad, "\n"))
	}
	if o.enforce && missed > 0 {
		return fmt.Errorf("%d targets missed", missed)
	}
	return nil
}

func printRow(w io.Writer, r *result) {
	us := func(q float64) float64 { return float64(r.hist.quantile(q)) / 1e3 }
	fmt.Fprintf(w, "%s\t%s\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.1f\t%.1f\t%.1f\t%d\t\n", r.scenario, r.server, r.rate(),
		us(0.5), us(0.9), us(0.99), us(0.999), r.cpuPer1k()*1000, float64(r.rssNow)/(1<<20), float64(r.rss)/(1<<20), r.unexpected)
}

func printRatio(w io.Writer, floor, p *result) {
	fmt.Fprintf(w, "\tvs FLOOR\t×%.2f\t%+.0f\t%+.0f\t%+.0f\t%+.0f\t×%.2f\t\t\t\t\n", p.rate()/floor.rate(),
		added(floor, p, 0.5), added(floor, p, 0.9), added(floor, p, 0.99), added(floor, p, 0.999), p.cpuPer1k()/floor.cpuPer1k())
}

// added is the latency Portcullis adds over FLOOR at quantile q, in µs.
func added(floor, p *result, q float64) float64 {
	return float64(p.hist.quantile(q)-floor.hist.quantile(q)) / 1e3
}

// benchLine is the result in the Go benchmark format (benchstat reads it).
func benchLine(r *result) string {
	us := func(q float64) float64 { return float64(r.hist.quantile(q)) / 1e3 }
	return fmt.Sprintf("BenchmarkLoad/%s/%s/%s %d %.0f ns/op %.0f checks/s %.1f p50-µs %.1f p90-µs %.1f p99-µs %.1f p99.9-µs %.4f cpu-ms/check %.1f peak-rss-MB",
		r.world, r.scenario, r.server, r.checks, float64(r.elapsed.Nanoseconds())/float64(r.checks), r.rate(),
		us(0.5), us(0.9), us(0.99), us(0.999), r.cpuPer1k(), float64(r.rss)/(1<<20))
}

// printTargets prints the targets next to the figures and returns how many were
// missed.
func printTargets(results []*result, colds []*server, ws []world) int {
	find := func(world, sc, server string) *result {
		for _, r := range results {
			if r.world == world && r.scenario == sc && r.server == server {
				return r
			}
		}
		return nil
	}
	missed := 0
	fmt.Println("\n== against the targets")
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	line := func(what string, got float64, unit string, ok bool, target string) {
		verdict := "ok"
		if !ok {
			verdict, missed = "MISSED", missed+1
		}
		fmt.Fprintf(tw, "%s\t%.2f %s\t%s\t%s\n", what, got, unit, target, verdict)
	}
	for i, w := range ws {
		if f, p := find(w.name, "two-factor", "floor"), find(w.name, "two-factor", "portcullis"); f != nil && p != nil {
			line(w.name+" two-factor (cached) throughput / FLOOR", p.rate()/f.rate(), "", p.rate()/f.rate() >= 0.80, ">= 0.80")
			line(w.name+" two-factor (cached) p99 added over FLOOR", added(f, p, 0.99), "µs", added(f, p, 0.99) <= 150, "<= 150 µs")
			line(w.name+" two-factor (cached) CPU per check / FLOOR", p.cpuPer1k()/f.cpuPer1k(), "", p.cpuPer1k()/f.cpuPer1k() <= 1.5, "<= 1.5")
		}
		if f, p := find(w.name, "two-factor-uncached", "floor"), find(w.name, "two-factor-uncached", "portcullis"); f != nil && p != nil {
			line(w.name+" two-factor (uncached) throughput / FLOOR", p.rate()/f.rate(), "", p.rate()/f.rate() >= 0.35, ">= 0.35")
		}
		var rss, rssNow uint64
		for _, r := range results {
			if r.world == w.name && r.server == "portcullis" {
				rss, rssNow = max(rss, r.rss), r.rssNow
			}
		}
		if w.name == "large" {
			if rss > 0 {
				line("large peak RSS of portcullis (VmHWM)", float64(rss)/(1<<20), "MB", rss <= 250<<20, "<= 250 MB")
				fmt.Fprintf(tw, "large RSS of portcullis at the end (VmRSS)\t%.2f MB\t\t\n", float64(rssNow)/(1<<20))
			}
			line("large cold start (to the first right answer)", colds[i].firstCheck.Seconds(), "s", colds[i].firstCheck <= 3*time.Second, "<= 3 s")
			fmt.Fprintf(tw, "large cold start, CPU time of portcullis\t%.2f s\t(wall time above inflates on a busy machine)\t\n", colds[i].coldCPU.Seconds())
		} else {
			fmt.Fprintf(tw, "%s cold start (to the first right answer)\t%.2f s\t(target for the large world only)\t\n", w.name, colds[i].firstCheck.Seconds())
		}
	}
	tw.Flush()
	return missed
}

// profile loads portcullis alone for d while fetching a CPU profile of those d, then the
// allocs profile, into dir.
func profile(ctx context.Context, l *load, s *server, w world, sc, dir string, d time.Duration) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	base := filepath.Join(dir, w.name+"-"+sc)
	fetch := func(path, file string) error {
		resp, err := http.Get("http://" + s.pprofAddr + path)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		f, err := os.Create(file)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, resp.Body); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	errc := make(chan error, 1)
	go func() {
		errc <- fetch(fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(d.Seconds())), base+"-cpu.pprof")
	}()
	l.round(ctx, s.t, d+500*time.Millisecond)
	if err := <-errc; err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	if err := fetch("/debug/pprof/allocs", base+"-allocs.pprof"); err != nil {
		return fmt.Errorf("allocs profile: %w", err)
	}
	fmt.Printf("profiles of %s/%s: %s-cpu.pprof, %s-allocs.pprof (go tool pprof -top %s %s-cpu.pprof)\n", w.name, sc, base, base, "bin/portcullis", base)
	return nil
}

func numCPU() int { return runtime.NumCPU() }

// formatSeconds lists durations in seconds, in the order measured.
func formatSeconds(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = strconv.FormatFloat(x, 'f', 2, 64)
	}
	return strings.Join(parts, ", ")
}
