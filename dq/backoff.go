package dq

import (
	"math/rand/v2"
	"time"
)

// retryBackoff is the delay before retrying a job whose attempt-th run
// failed: base doubled per earlier failure, capped at max, then jittered to
// 75–125% (never above max) so that jobs failing together do not come back
// together.
func retryBackoff(attempt int, base, max time.Duration) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := base
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max || d <= 0 {
		d = max
	}
	j := time.Duration(float64(d) * (0.75 + 0.5*rand.Float64()))
	if j > max {
		j = max
	}
	return j
}
