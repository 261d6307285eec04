#!/bin/bash
# tests/lint-bats.sh FILE...: rejects a `! cmd` line in a bats file unless it
# is the last command of its test (or function).
#
# bats runs a test body under `set -e`, and bash's errexit ignores a command
# whose status is inverted with `!`: a `! cmd` line that is not the body's
# last command can never fail the test.  Write `run ! cmd`, or check $status,
# or `if cmd; then echo why; false; fi`.  The last command of a body is fine:
# its status is the body's status.
#
# A "last command" is a `! ...` line (with its `\` continuations and here-doc)
# followed, past blank and comment lines, by a `}` in column 0: the end of a
# top-level @test or function.  Exit status: 0 clean, 1 offending lines
# (printed as FILE:LINE: ...), 2 usage or unreadable file.
set -u
if [ $# -eq 0 ]; then
	echo "usage: tests/lint-bats.sh FILE..." >&2
	exit 2
fi
rc=0
for f in "$@"; do
	if [ ! -r "$f" ]; then
		echo "$f: cannot read" >&2
		rc=2
		continue
	fi
	awk -v file="$f" '
	function flush_pending(next_line) {
		if (pending && next_line !~ /^}[ \t]*$/) {
			printf "%s:%d: `%s` is not the last command of its test: under set -e a `!` command never fails the test; write `run ! ...` or check $status\n", file, pending, pending_text
			bad = 1
		}
		pending = 0
	}
	{
		line = $0
		if (heredoc != "") {           # inside a here-document: skip to its end
			t = line
			if (heredoc_strip) sub(/^\t+/, "", t)
			if (t == heredoc) heredoc = ""
			next
		}
		if (cont) {                    # continuation of the previous command
			cont = (line ~ /\\$/)
			next
		}
		if (line ~ /^[ \t]*(#.*)?$/) next
		flush_pending(line)
		if (line ~ /^[ \t]*![ \t]/) {
			pending = NR
			pending_text = line
			sub(/^[ \t]+/, "", pending_text)
			if (length(pending_text) > 60) pending_text = substr(pending_text, 1, 57) "..."
		}
		cont = (line ~ /\\$/)
		# a here-document starts after this line: <<WORD, <<-WORD, <<"WORD", <<'"'"'WORD'"'"'
		t2 = line
		gsub(/<<</, "", t2)
		if (match(t2, /<<-?[ \t]*["'"'"']?[A-Za-z_][A-Za-z_0-9]*/)) {
			h = substr(t2, RSTART, RLENGTH)
			heredoc_strip = (h ~ /^<<-/)
			sub(/^<<-?[ \t]*["'"'"']?/, "", h)
			heredoc = h
		}
	}
	END {
		flush_pending("")
		exit bad
	}' "$f" || rc=$((rc > 1 ? rc : 1))
done
exit $rc
