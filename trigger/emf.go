package trigger

// Metrics returns the names of the metrics in the trigger's log line
// (Embedded Metric Format, namespace "pretoken", dimensions FunctionName and
// Outcome), for the deployment tests that hold the alarms to them.
func Metrics() []string {
	out := make([]string, 0, len(metrics))
	for _, m := range metrics {
		out = append(out, m.name)
	}
	return out
}

// Outcomes are the values of the Outcome dimension.
var Outcomes = []Outcome{OutcomeIssued, OutcomeUnavailable, OutcomeTooLarge, OutcomeMalformed, OutcomeInternal}
