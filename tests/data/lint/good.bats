# lint-bats fixture: nothing here may be reported.
@test "a ! line that is the last command" {
	run true
	! grep -q x <<<"$output"
}

@test "last, with a continuation and a comment after it" {
	! grep -q x \
		/dev/null
	# a comment before the closing brace

}

@test "run !, if !, while ! and a ! inside a here-document" {
	run ! false
	if ! true; then false; fi
	while ! true; do false; done
	cat >f <<-EOF2
	! this is text, not a command
	EOF2
	python3 - <<'PY'
! neither is this
PY
	grep -c x <<<"no here-document"
}

helper() {
	[ -n "$1" ]
	! grep -q "$1" /dev/null
}
