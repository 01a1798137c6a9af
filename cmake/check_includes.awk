# The scan of check_includes.cmake (which says what it checks).
# usage: awk -f check_includes.awk TABLE FILE...   (run in the source root; FILEs relative to it)
# TABLE lines: "layer L USES...", "open L", "header NAME L", "shared FILE", "allow FROM>TO".
# A file may include files of its own layer, public headers (include/longctx/) of the layers
# its layer uses, and src/ headers of the "open" ones among them; anything else is reported.
function isfile(p,   r, line) {
    if (p in scanned) return 1
    r = (getline line < p)
    if (r >= 0) close(p)
    return r >= 0
}
function normal(p,   n, i, k, parts, out) {
    n = split(p, parts, "/")
    k = 0
    for (i = 1; i <= n; i++) {
        if (parts[i] == "" || parts[i] == ".") continue
        if (parts[i] == ".." && k > 0 && out[k] != "..") { k--; continue }
        out[++k] = parts[i]
    }
    p = ""
    for (i = 1; i <= k; i++) p = p (i > 1 ? "/" : "") out[i]
    return p
}
# The layer a file belongs to; "" for a file outside src/ and include/longctx/ (a test
# header, a system header), "?" plus the reason for one the table does not place.
function layer_of(p,   parts, name) {
    if (p ~ /^src\//) {
        split(p, parts, "/")
        if (parts[2] in uses) return parts[2]
        return "?src/" parts[2] "/ is no layer of the table"
    }
    if (p ~ /^include\/longctx\//) {
        name = substr(p, length("include/longctx/") + 1)
        if (name in header) return header[name]
        return "?" p " belongs to no layer (add it to LONGCTX_PUBLIC_HEADERS)"
    }
    return ""
}
# What #include "name" in file `from` opens, the way the build's include paths find it:
# the including file's folder, then include/ and src/, then (the GPU sources' -I of their
# folders) the one scanned file of that name; "" when it is none of ours.
function resolve(name, from,   dir, c, base, n, parts) {
    if (name ~ /^longctx\//) return "include/" name
    dir = from
    sub(/\/[^\/]*$/, "", dir)
    c = normal(dir "/" name)
    if (isfile(c)) return c
    c = normal("src/" name)
    if (isfile(c)) return c
    n = split(name, parts, "/")
    base = parts[n]
    if (count[base] == 1 && (byname[base] == name || substr(byname[base], length(byname[base]) - length(name)) == "/" name))
        return byname[base]
    return ""
}
BEGIN {
    for (i = 2; i < ARGC; i++) {
        scanned[ARGV[i]] = 1
        n = split(ARGV[i], parts, "/")
        count[parts[n]]++
        byname[parts[n]] = ARGV[i]
    }
    nfiles = ARGC - 2
}
FNR == NR {
    if ($1 == "layer") {
        uses[$2] = " "
        for (i = 3; i <= NF; i++) uses[$2] = uses[$2] $i " "
    } else if ($1 == "open") {
        open[$2] = 1
    } else if ($1 == "header") {
        header[$2] = $3
    } else if ($1 == "shared") {
        shared[$2] = 1
    } else if ($1 == "allow") {
        allow[$2] = 0
        nallow++
    }
    next
}
FNR == 1 {
    fl = layer_of(FILENAME)
    if (fl ~ /^\?/) {
        print FILENAME ": " substr(fl, 2)
        bad++
    }
}
/^[ \t]*#[ \t]*include[ \t]*["<]/ {
    line = $0
    sub(/^[ \t]*#[ \t]*include[ \t]*/, "", line)
    if (substr(line, 1, 1) == "<") {
        if (line !~ /^<longctx\//) next
        name = substr(line, 2)
        sub(/>.*/, "", name)
        to = "include/" name
    } else {
        name = substr(line, 2)
        sub(/".*/, "", name)
        to = resolve(name, FILENAME)
    }
    if (to == "" || fl ~ /^\?/) next
    nincl++
    tl = layer_of(to)
    if (tl == "" || tl == fl) next
    if (tl ~ /^\?/) {
        print FILENAME ":" FNR ": includes " name ": " substr(tl, 2)
        bad++
        next
    }
    if ((FILENAME ">" to) in allow) {
        allow[FILENAME ">" to]++
        next
    }
    if (!index(uses[fl], " " tl " ")) {
        print FILENAME ":" FNR ": includes " name " (" to "): layer " fl " may not use layer " tl \
              " (" fl " uses:" (uses[fl] == " " ? " nothing" : substr(uses[fl], 1, length(uses[fl]) - 1)) \
              "; the table is cmake/layers.cmake)"
        bad++
    } else if (to ~ /^src\// && !(tl in open) && !(to in shared)) {
        print FILENAME ":" FNR ": includes " name " (" to "): a private header of layer " tl \
              " (layer " fl " may use " tl " through its public header in include/longctx/)"
        bad++
    }
}
END {
    for (a in allow)
        if (!allow[a]) print "longctx layers: note: the temporary exception " a " matches no include: remove it from cmake/layers.cmake"
    if (bad) {
        print "longctx layers: FAILED: " bad " finding(s) against the layer table"
        exit 1
    }
    printf "longctx layers: ok, %d files, %d includes of our own files, none upward (%d temporary exceptions in cmake/layers.cmake)\n", nfiles, nincl, nallow
}
