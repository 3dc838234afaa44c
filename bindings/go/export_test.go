package astack

// CDecisionHeaders formats a decision's headers through the library, for the tests.
func CDecisionHeaders(d *Decision, code uint32) (string, string) {
	p, r, err := cDecisionHeaders(d, code)
	if err != nil {
		panic(err)
	}
	return p, r
}

// CLimiterHeaders formats a limiter decision's headers through the library.
func CLimiterHeaders(l *Limiter, d *LimitDecision, code, window uint32) (string, string) {
	p, r, err := l.cHeaders(d, code, window)
	if err != nil {
		panic(err)
	}
	return p, r
}

// ResultCode is the library's code of a result number.
func ResultCode(rc uint32) string { return resultCode(rc) }

// StatusOf is the HTTP status the binding gives a code.
func StatusOf(code string) int { return statusOf(code) }
