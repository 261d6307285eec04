# lint-bats fixture: every `! ...` line here is planted and must be reported, nothing else.
@test "a ! line in the middle of a test" {
	! grep -q x /dev/null
	true
}

@test "a ! pipeline with a continuation, then another command" {
	! find . -name '*.pyc' \
		| grep -q .
	run true
}

@test "a ! before a here-document, then another command" {
	! grep -q x <<-EOF2
	data
	EOF2
	[ 1 = 1 ]
}

helper() {
	! grep -q "$1" /proc/self/mountinfo
	[ -n "$1" ]
}

@test "a ! as the last command of an if: the test goes on after it" {
	if true; then
		! false
	fi
	true
}
