#!/usr/bin/env bash
# Runs every fuzz target of the module, one after the other, for FUZZTIME each (default 10s;
# any -fuzztime value: "30s", "5000x"). Targets are found by looking for `func FuzzXxx(` in
# the test files, so a new one cannot be forgotten. Fails when a target has no committed seed
# corpus (testdata/fuzz/FuzzXxx/ next to its test), when a run finds a crasher, or when go
# test fuzzed nothing. Prints one summary line per target.
#
# A crasher is written by go test to <package>/testdata/fuzz/<FuzzXxx>/<hash>; it is printed
# with the command that replays it. Commit it (with the fix) and it becomes a seed.
#
#   FUZZTIME=5s hack/fuzz.sh            # or: make fuzz FUZZTIME=5s
#   hack/fuzz.sh FuzzHostLookup ...     # only these targets
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}
# Minimising each new interesting input may take go test's default of 60s, during which a slow
# target (FuzzLoadDir writes files) executes nothing new; a run that ends then fails with
# "context deadline exceeded". A bounded minimisation keeps short runs fuzzing.
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-100x}
LOGDIR=${FUZZ_LOG_DIR:-bin/fuzz}
mkdir -p "$LOGDIR"

# Every `func FuzzXxx(f *testing.F)` in a test file outside bin/, vendor/ and testdata/:
# "<package dir> <target>" lines, sorted.
discover() {
	find . \( -path ./bin -o -path ./.git -o -name vendor -o -name testdata -o -name node_modules \) -prune -o \
		-name '*_test.go' -print |
		xargs grep -Ho '^func Fuzz[A-Za-z0-9_]*(' |
		sed -E 's|^\./||; s|^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\($|\1 \2|; s|^[^/ ]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\($|. \1|' |
		sort -u
}

mapfile -t targets < <(discover)
if [ "${#targets[@]}" -eq 0 ]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi
if [ "$#" -gt 0 ]; then
	selected=()
	for t in "${targets[@]}"; do
		for want in "$@"; do
			[ "${t#* }" = "$want" ] && selected+=("$t")
		done
	done
	targets=("${selected[@]}")
	[ "${#targets[@]}" -gt 0 ] || { echo "fuzz: no target named $*" >&2; exit 1; }
fi

in_git=false
git rev-parse --is-inside-work-tree >/dev/null 2>&1 && in_git=true

# A committed seed corpus for every target, checked before spending any time fuzzing.
missing=0
for t in "${targets[@]}"; do
	dir=${t% *} name=${t#* }
	corpus="$dir/testdata/fuzz/$name"
	if $in_git; then
		n=$(git ls-files -- "$corpus" | wc -l)
	else
		n=$(find "$corpus" -maxdepth 1 -type f 2>/dev/null | wc -l)
	fi
	if [ "$n" -eq 0 ]; then
		echo "fuzz: $name (./$dir) has no committed seed corpus: add files to $corpus/ (go test fuzz v1)" >&2
		missing=1
	fi
done
[ "$missing" -eq 0 ] || exit 1

echo "fuzz: ${#targets[@]} targets, $FUZZTIME each"
start=$SECONDS
failed=()
summary=()
declare -A built=()
module=$("$GO" list -m)
fuzzcache="$("$GO" env GOCACHE)/fuzz"
bindir=$(cd "$LOGDIR" && pwd)
for t in "${targets[@]}"; do
	dir=${t% *} name=${t#* }
	log="$LOGDIR/$name.log"
	seeds=$(find "$dir/testdata/fuzz/$name" -maxdepth 1 -type f | wc -l)
	t0=$SECONDS
	status=ok
	: >"$log"
	# One instrumented test binary per package (what `go test -fuzz` builds), run once per
	# target in the package directory, as go test runs it: the link is the slow part.
	bin="$bindir/$(tr / _ <<<"$dir").fuzz.test"
	if [ -z "${built[$dir]:-}" ]; then
		built[$dir]=ok
		"$GO" test -c -vet=off -fuzz=. -o "$bin" "./$dir/" >>"$log" 2>&1 || built[$dir]=$log
	fi
	if [ "${built[$dir]}" != ok ]; then
		status=FAIL
		[ "${built[$dir]}" = "$log" ] || echo "fuzz: the test binary of ./$dir did not build; see ${built[$dir]}" >>"$log"
	else
		importpath=$module/$dir
		[ "$dir" = . ] && importpath=$module
		run() {
			(cd "$dir" && "$bin" -test.run='^$' -test.fuzz="^${name}\$" -test.fuzztime="$FUZZTIME" \
				-test.fuzzminimizetime="$FUZZMINIMIZETIME" \
				-test.fuzzcachedir="$fuzzcache/$importpath" -test.paniconexit0) >>"$log" 2>&1
		}
		if ! run; then
			# Go 1.26's fuzz coordinator can fail a target with a bare "context deadline
			# exceeded" when -fuzztime ends while a worker is busy (go.dev/issue/75804, fixed
			# in Go 1.27): no input is written, nothing was found. Run such a target once more;
			# a real finding always writes its input.
			if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
				echo "fuzz: $name: Go's fuzz coordinator deadline race (go.dev/issue/75804), no input written; running it again" >>"$log"
				run || status=FAIL
			else
				status=FAIL
			fi
		fi
		if [ "$status" = FAIL ]; then
			:
		elif ! grep -q '^fuzz: elapsed' "$log"; then
			status=FAIL # nothing was fuzzed (a build tag?), yet the run passed
			echo "fuzz: $name in ./$dir was not fuzzed (no 'fuzz: elapsed' in $log)" >>"$log"
		fi
	fi
	took=$((SECONDS - t0))
	last=$(grep '^fuzz: elapsed' "$log" | tail -1 || true)
	execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
	newi=$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$last")
	note=
	[ "$status" = ok ] && [ -z "$execs" ] && note="  (the seeds and cached corpus took all of FUZZTIME: raise it)"
	line=$(printf '%-4s %-24s ./%-22s %4ss  execs %-9s new %-4s seeds %s%s' "$status" "$name" "$dir" "$took" "${execs:-0}" "${newi:-0}" "$seeds" "$note")
	summary+=("$line")
	echo "$line"
	if [ "$status" = FAIL ]; then
		failed+=("$name")
		echo "---- $name failed; last lines of $log:"
		grep -v '^fuzz: elapsed' "$log" | tail -25 | sed 's/^/    /'
		crasher=$(sed -nE 's/.*Failing input written to (testdata\/fuzz\/[^ ]+).*/\1/p' "$log" | tail -1)
		if [ -z "$crasher" ]; then
			# A seed that fails: a committed file (or an f.Add seed, or go's cached corpus).
			seed=$(sed -nE "s/.*failure while testing seed corpus entry: $name\/([^ ]+).*/\1/p" "$log" | tail -1)
			[ -n "$seed" ] && [ -f "$dir/testdata/fuzz/$name/$seed" ] && crasher=testdata/fuzz/$name/$seed
		fi
		if [ -n "$crasher" ]; then
			echo "    CRASHER: $dir/$crasher"
			echo "    replay:  $GO test -run='^$name/$(basename "$crasher")\$' ./$dir/"
		fi
		echo "----"
	fi
done

echo
echo "fuzz summary ($FUZZTIME per target, $((SECONDS - start))s in all):"
printf '  %s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
	echo "fuzz: FAILED: ${failed[*]} (logs in $LOGDIR/)" >&2
	exit 1
fi
