#!/usr/bin/env bash
# The command line as a user meets it (issue 27): every command and subcommand answers --help
# and -h on stdout with status 0, `longctx --version` names the build's version, prepare-data
# prints the paths it wrote without a doubled slash, and a bad setting read before any PE
# exists is named without a PE number ("PE -1" named nobody).
# usage: basics.sh LONGCTX_BINARY VERSION WORKDIR
set -u
LC=$1 VERSION=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
fail=0
check() { # description, then: want_rc regex ("" for any output) -- command...
    local what=$1 want=$2 pat=$3
    shift 4
    "$@" >"$work/out" 2>"$work/err"
    local rc=$?
    if { [ "$want" = 0 ] && [ $rc -ne 0 ]; } || { [ "$want" != 0 ] && [ $rc -eq 0 ]; } ||
        { [ -n "$pat" ] && ! grep -Eq -- "$pat" "$work/out" "$work/err"; }; then
        echo "FAIL $what: status $rc, wanted $want and /$pat/"; sed 's/^/  out: /' "$work/out" | head -5
        sed 's/^/  err: /' "$work/err" | head -5
        fail=1
    else
        echo "ok   $what"
    fi
}
for h in --help -h; do
    check "longctx $h" 0 "^usage: longctx" -- "$LC" $h
    check "launch $h" 0 "^usage: longctx launch" -- "$LC" launch $h
    check "launch -n 2 $h" 0 "^usage: longctx launch" -- "$LC" launch -n 2 $h
    check "prepare-data $h" 0 "^usage: longctx prepare-data" -- "$LC" prepare-data $h
    check "train $h" 0 "^usage: longctx train" -- "$LC" train $h
    check "ckpt $h" 0 "^usage: longctx ckpt" -- "$LC" ckpt $h
    for sub in info verify loss; do
        check "ckpt $sub $h" 0 "^usage: longctx ckpt" -- "$LC" ckpt $sub $h
        check "ckpt $sub DIR $h" 0 "^usage: longctx ckpt" -- "$LC" ckpt $sub "$work/none" $h
    done
    check "plan $h" 0 "^usage: longctx plan" -- "$LC" plan $h
    check "bench $h" 0 "^usage: longctx" -- "$LC" bench $h
    for b in permute attn tiles ring train; do
        check "bench $b $h" 0 "^usage: longctx bench $b" -- "$LC" bench $b $h
    done
done
# help goes to stdout: a user pipes it into less
"$LC" ckpt info --help 2>/dev/null | grep -q "^usage: longctx ckpt" || { echo "FAIL ckpt info --help not on stdout"; fail=1; }
check "--version" 0 "^longctx $VERSION\$" -- "$LC" --version
check "bench with no name is still an error" 2 "^usage: longctx" -- "$LC" bench
check "an unknown benchmark is still an error" 2 "unknown benchmark 'frob'" -- "$LC" bench frob
check "a missing checkpoint folder is still an error" 1 "does not exist|no checkpoint" -- "$LC" ckpt info "$work/none"

# prepare-data with the README's trailing slash (a small HTML source of our own)
mkdir -p "$work/html/a"
for i in $(seq 1 30); do printf '<html><body><p>page %d: %s</p></body></html>\n' "$i" \
    "$(head -c 600 /dev/zero | tr '\0' 'x')" >"$work/html/a/p$i.html"; done
check "prepare-data prints data/train.bin, not data//train.bin" 0 "-> $work/data/train.bin .*, $work/data/val.bin" \
    -- "$LC" prepare-data "$work/data/" --source "$work/html"
grep -q '//' "$work/out" && { echo "FAIL a doubled slash in: $(cat "$work/out")"; fail=1; }

# longctx plan: a listing on a built-in profile, and its errors named
check "plan ranks llama3-8b on gb200-nvl72" 0 "^best: .*GiB per device" -- \
    "$LC" plan --model llama3-8b --seq 256K --pes 16 --profile gb200-nvl72 --dtype bf16
check "plan names an unknown model" 2 "--model nope is neither a preset" -- "$LC" plan --model nope
check "plan names a missing profile" 1 "cannot read the profile $work/none.json" -- "$LC" plan --profile "$work/none.json"
printf '{"profile":"longctx-host-1","gpu":0,"cores":2,"per_node":1,"overlap":0,"mem_bytes":1e9}' >"$work/p.json"
check "plan names a profile's missing key" 1 "\"base_bytes\" is missing" -- "$LC" plan --profile "$work/p.json"
check "plan: a list of lengths without --check is named" 2 "--seq takes one length" -- \
    "$LC" plan --seq 16K,64K --profile h100-dgx
check "plan: --seq before --check takes the list" 0 "^usage: longctx plan" -- "$LC" plan --seq 16K,64K --check --help
check "plan: nothing fits is an error" 1 "no layout fits in memory" -- \
    "$LC" plan --model llama3-8b --seq 1M --pes 2 --profile h100-dgx
check "train --plan auto with --cp is refused, naming it" 2 "--plan auto chooses --cp itself" -- \
    "$LC" train --model tiny --seq 64 --steps 1 --data "$work/data" --plan auto --cp 2
check "train --plan with another word is refused" 2 "the only choice is auto" -- \
    "$LC" train --model tiny --seq 64 --steps 1 --data "$work/data" --plan manual
check "train --plan auto with --device cuda is refused" 2 "with --device cuda give the mesh" -- \
    "$LC" train --model tiny --seq 64 --steps 1 --data "$work/data" --plan auto --device cuda

# a bad setting at world start: named, with no PE number (there is none yet)
check "LONGCTX_TIMEOUT=abc is named" nonzero "LONGCTX_TIMEOUT=abc: expected seconds" -- \
    env LONGCTX_TIMEOUT=abc "$LC" launch -n 1 -- "$LC" train --model tiny --seq 64 --steps 1 --data "$work/data"
if grep -q "PE -1" "$work/out" "$work/err"; then echo "FAIL 'PE -1' in: $(cat "$work/err")"; fail=1; else echo "ok   no 'PE -1'"; fi

# train: usage shows the defaults it has, --keep needs --save-dir as --save-every does, and
# more threads than the PE's cores is said (it runs, slower)
run=(--model tiny --seq 64 --steps 1 --peak 1 --quiet --data "$work/data" --out "$work/run")
check "train usage shows the default CP 1" 0 "^ +--cp C +context-parallel PEs \[1\]$" -- "$LC" train --help
grep -Eq -- "^ +--out DIR .*\[train_out\]$" "$work/out" || { echo "FAIL train usage lacks --out's default train_out"; fail=1; }
grep -q "\[--cp 2\]" "$work/out" && { echo "FAIL train usage still shows --cp 2"; fail=1; }
# usage and parser are one table: every flag --help lists is one train takes (a bad value is
# refused for its value, never as an unknown option)
flags=$(sed -n 's/^  [ *~] \(--[a-z0-9-]*\).*/\1/p' "$work/out")
[ "$(echo "$flags" | wc -l)" -ge 45 ] || { echo "FAIL train --help lists only $(echo "$flags" | wc -l) options"; fail=1; }
for f in $flags; do
    "$LC" train $f 1 --help >/dev/null 2>"$work/ferr"
    if grep -q "unknown option" "$work/ferr"; then echo "FAIL --help lists $f, which train refuses"; fail=1; fi
done
check "a flag --help does not list is refused" 2 "--frobnicate is an unknown option" -- "$LC" train --frobnicate 1
check "--keep without --save-dir is refused" nonzero "--keep needs --save-dir" -- "$LC" train "${run[@]}" --keep 2
check "--save-every without --save-dir is refused" nonzero "--save-every needs --save-dir" -- "$LC" train "${run[@]}" --save-every 2
cores=$(nproc)
check "--threads above the cores is said" 0 "--threads $((cores * 32)) is more than the [0-9]+ core" -- \
    "$LC" train "${run[@]}" --threads $((cores * 32))

# ckpt verify on a Hugging Face folder without --hf says to pass --hf (a checkpoint of ours
# without its training state is exactly such a folder)
check "a tiny run saves a checkpoint" 0 "" -- "$LC" train "${run[@]}" --save-dir "$work/ck"
step=$(ls -d "$work"/ck/step-* | tail -1)
mkdir -p "$work/hf" && cp "$step/config.json" "$step/model.safetensors" "$work/hf/"
check "ckpt verify HF_DIR says pass --hf" 2 "is a Hugging Face folder .*pass --hf" -- "$LC" ckpt verify "$work/hf"
check "ckpt loss HF_DIR says pass --hf" 2 "is a Hugging Face folder .*pass --hf" -- "$LC" ckpt loss "$work/hf" --tokens 1,2,3
check "ckpt verify HF_DIR --hf loads it" 0 "." -- "$LC" ckpt verify "$work/hf" --hf
check "ckpt verify on our checkpoint still loads it" 0 "." -- "$LC" ckpt verify "$work/ck"

# resume: the closing line counts the steps this run made, and a checkpoint already past
# --steps is an error that says so (it used to "train" 0 steps at inf tokens/s and exit 0)
res=(--model tiny --seq 64 --peak 1 --data "$work/data" --out "$work/res" --save-dir "$work/rck")
check "a 2-step run" 0 "train: 2 steps in" -- "$LC" train "${res[@]}" --steps 2
check "resumed to 5 steps, 3 were run" 0 "train: 3 steps \(resumed\) in" -- "$LC" train "${res[@]}" --steps 5 --resume
check "resume past --steps is refused" nonzero "at step 5, already past --steps 3: nothing to train" -- \
    "$LC" train "${res[@]}" --steps 3 --resume
check "resume at exactly --steps: the run is complete" 0 "at step 5 = --steps: the run is complete" -- \
    "$LC" train "${res[@]}" --steps 5 --resume

# resume keeps the history: metrics.jsonl holds every step once, in order, the records past
# the checkpoint's step dropped (they ran again); loss.png is drawn from all of them
steps_in() { sed -n 's/^{"step":\([0-9]*\),.*/\1/p' "$1" | tr '\n' ' '; }
[ "$(steps_in "$work/res/metrics.jsonl")" = "1 2 3 4 5 " ] ||
    { echo "FAIL resumed metrics.jsonl has steps: $(steps_in "$work/res/metrics.jsonl")"; fail=1; }
his=(--model tiny --seq 64 --peak 1 --data "$work/data" --out "$work/his" --save-dir "$work/hck" --save-every 2)
check "3 steps, saving at 2 and 3" 0 "" -- "$LC" train "${his[@]}" --steps 3
rm -rf "$work"/hck/step-00000003 # as if the run died after step 3's record, before its save
check "resume from step 2 to step 4" 0 "train: 2 steps \(resumed\)" -- "$LC" train "${his[@]}" --steps 4 --resume
[ "$(steps_in "$work/his/metrics.jsonl")" = "1 2 3 4 " ] ||
    { echo "FAIL metrics.jsonl after a resume from step 2: steps $(steps_in "$work/his/metrics.jsonl")"; fail=1; }
[ -s "$work/his/loss.png" ] || { echo "FAIL no loss.png after the resume"; fail=1; }

# --resume auto: the one command a job script runs to start a run and to restart it
aut=(--model tiny --seq 64 --peak 1 --data "$work/data" --out "$work/aut" --save-dir "$work/ack" --save-every 1)
check "--resume auto needs --save-dir" nonzero "--resume auto needs --save-dir" -- \
    "$LC" train --model tiny --seq 64 --data "$work/data" --resume auto
check "--resume auto with nothing saved starts a new run (2 PEs, said once)" 0 \
    "no checkpoint in $work/ack yet, starting a new run" -- "$LC" train "${aut[@]}" --cp 2 --steps 2 --resume auto
[ "$(grep -c 'starting a new run' "$work/out")" = 1 ] || { echo "FAIL the new-run line is not printed once"; fail=1; }
check "the same command with more steps resumes" 0 "train: 2 steps \(resumed\)" -- \
    "$LC" train "${aut[@]}" --cp 2 --steps 4 --resume auto
check "and once done, ends at once" 0 "the run is complete" -- "$LC" train "${aut[@]}" --cp 2 --steps 4 --resume auto

# an error every PE meets alike on resume is printed once, by the PE that speaks for them
check "2 PEs, a resume with another --seed" nonzero "was written with --seed 1337, this run has 5" -- \
    "$LC" train "${aut[@]}" --cp 2 --steps 6 --resume --seed 5
[ "$(grep -c 'was written with --seed' "$work/err")" = 1 ] ||
    { echo "FAIL the --seed error is printed $(grep -c 'was written with --seed' "$work/err") times:"; cat "$work/err"; fail=1; }
check "2 PEs, a resume past --steps" nonzero "already past --steps 2" -- "$LC" train "${aut[@]}" --cp 2 --steps 2 --resume
[ "$(grep -c 'already past' "$work/err")" = 1 ] || { echo "FAIL the past-steps error is not printed once:"; cat "$work/err"; fail=1; }

# resume takes the run's settings from the checkpoint: no --model, --seq, --seed, --wd or --lr
# needed; a conflicting one is refused naming both values, before any PE starts
rs=(--peak 1 --data "$work/data" --out "$work/rs" --save-dir "$work/rsck")
check "a run with its own seq, seed, wd and lr" 0 "" -- \
    "$LC" train --model tiny --seq 32 --seed 9 --wd 0.05 --lr 5e-3 "${rs[@]}" --steps 2
check "--resume with none of them given takes them from the checkpoint" 0 \
    "AdamW lr 0.005 -> 0.0005 \(warmup 0\), wd 0.05, clip 1, seed 9" -- "$LC" train "${rs[@]}" --steps 3 --resume
grep -q "params), seq 32, " "$work/out" || { echo "FAIL the resumed run's seq is not the checkpoint's 32"; fail=1; }
check "a conflicting --seq is refused naming both" 2 "rsck/step-00000003 was written with --seq 32, this run has 64" -- \
    "$LC" train "${rs[@]}" --steps 4 --resume --seq 64
check "a conflicting --wd is refused naming both" 2 "was written with --wd 0.05, this run has 0.1" -- \
    "$LC" train "${rs[@]}" --steps 4 --resume --wd 0.1
check "--lr may change on resume" 0 "AdamW lr 0.001 " -- "$LC" train "${rs[@]}" --steps 4 --resume --lr 1e-3

# the lr schedule: a resume with more --steps goes on with the saved one (held at lr_min past
# its end) and says so; --extend-schedule re-fits its cosine to the new end instead
lr_of() { sed -n "s/^{\"step\":$2,.*\"lr\":\([^,]*\),.*/\1/p" "$1"; }
for mode in hold extend; do
    sch=(--model tiny --seq 64 --peak 1 --data "$work/data" --out "$work/s$mode" --save-dir "$work/sck$mode" --warmup 1)
    check "$mode: 3 steps" 0 "" -- "$LC" train "${sch[@]}" --steps 3
    if [ $mode = hold ]; then
        check "hold: resumed to 6 steps, the schedule goes on as saved" 0 "goes on as saved .*cosine to step 3.*holds at lr_min" \
            -- "$LC" train "${sch[@]}" --steps 6 --resume
        a=$(lr_of "$work/shold/metrics.jsonl" 4) b=$(lr_of "$work/shold/metrics.jsonl" 6)
        [ -n "$a" ] && [ "$a" = "$b" ] || { echo "FAIL hold: lr at steps 4 and 6: '$a' '$b' (want equal, lr_min)"; fail=1; }
    else
        check "extend: --extend-schedule re-fits the cosine" 0 "extend-schedule: the lr schedule's cosine now ends at step 6 \(it was 3\)" \
            -- "$LC" train "${sch[@]}" --steps 6 --resume --extend-schedule
        a=$(lr_of "$work/sextend/metrics.jsonl" 4) b=$(lr_of "$work/sextend/metrics.jsonl" 6)
        [ -n "$a" ] && [ "$a" != "$b" ] || { echo "FAIL extend: lr at steps 4 and 6: '$a' '$b' (want a falling cosine)"; fail=1; }
    fi
done
# resume takes every recorded setting that changes the math or the data: dtype, document
# masking, clipping, accumulation (the global batch), the CP algorithm and layout, the data
# files; a given one that conflicts is refused naming both values; the mesh's choices may change
mkdir -p "$work/html2/b"
for i in $(seq 1 30); do printf '<html><body><p>other page %d: %s</p></body></html>\n' "$i" \
    "$(head -c 600 /dev/zero | tr '\0' 'y')" >"$work/html2/b/p$i.html"; done
"$LC" prepare-data "$work/data2" --source "$work/html2" >/dev/null
st=(--peak 1 --out "$work/st" --save-dir "$work/stck")
check "a bf16, doc-masked, clipped, accumulating all-gather run on 2 PEs" 0 "" -- "$LC" train --model tiny --seq 32 \
    --dtype bf16 --doc-mask --clip 0.5 --accum 2 --cp 2 --cp-algo allgather --layout striped --permute two_sided \
    --data "$work/data2" "${st[@]}" --steps 2
check "resumed with no settings, not even the data, on 1 PE" 0 \
    "as recorded in .*stck/step-00000002: --train $work/data2/train.bin --val $work/data2/val.bin --seq 32 --doc-mask .*--cp-algo allgather --layout striped --permute two_sided --dtype bf16 --bf16-dot (fma|dpbf16) --accum 2 .*--clip 0.5" \
    -- "$LC" train "${st[@]}" --steps 3 --resume
# the bf16 inner product the first run chose (measured on PE 0) is the resumed run's, said
grep -Eq "bf16 inner product: (fma|dpbf16), as given" "$work/out" ||
    { echo "FAIL the resumed run does not keep the recorded bf16 inner product"; fail=1; }
grep -q '"bf16_dot":"' "$work/st/metrics.jsonl" || { echo "FAIL metrics.jsonl does not record the bf16 inner product"; fail=1; }
grep -q "batch 1 x 2 seqs" "$work/out" && grep -q "bf16 compute, packed-document masking" "$work/out" &&
    grep -q "clip 0.5" "$work/out" && grep -q "CP all-gather, striped layout, two_sided lowering" "$work/out" ||
    { echo "FAIL the resumed run does not run with the recorded settings:"; cat "$work/out"; fail=1; }
check "a conflicting --dtype is refused naming both" 2 "stck/step-00000003 was written with --dtype bf16, this run has f32" \
    -- "$LC" train "${st[@]}" --steps 4 --resume --dtype f32
check "a conflicting --clip is refused naming both" 2 "was written with --clip 0.5, this run has 1" \
    -- "$LC" train "${st[@]}" --steps 4 --resume --clip 1
check "a conflicting --doc-sep is refused naming both" 2 "was written with --doc-sep 0, this run has 7" \
    -- "$LC" train "${st[@]}" --steps 4 --resume --doc-sep 7
check "an --accum that changes the global batch is refused" 2 \
    "was written with 2 sequences per step \(--dp 1 x --accum 2\), this run has 1 \(--dp 1 x --accum 1\)" \
    -- "$LC" train "${st[@]}" --steps 4 --resume --accum 1
check "--dp 2 keeps the global batch with --accum 1" 0 "batch 2 x 1 seqs" -- "$LC" train "${st[@]}" --steps 4 --resume --dp 2
check "--dp 3 cannot keep a batch of 2" 2 "--dp 3 cannot keep that batch" -- "$LC" train "${st[@]}" --steps 5 --resume --dp 3
check "other tokens are refused" 2 "was written with --train $work/data2/train.bin .*, this run's $work/data/train.bin holds other tokens" \
    -- "$LC" train "${st[@]}" --steps 5 --resume --data "$work/data"
mv "$work/data2" "$work/data3"
check "the same tokens moved elsewhere are taken" 0 "train: 1 steps \(resumed\)" \
    -- "$LC" train "${st[@]}" --steps 5 --resume --data "$work/data3"
check "the CP layout and lowering may change, and it is said" 0 \
    "this run changes --layout zigzag \(written with striped\), --permute one_sided \(written with two_sided\)" \
    -- "$LC" train "${st[@]}" --steps 6 --resume --cp 2 --layout zigzag --permute one_sided
exit $fail
