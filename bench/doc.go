// Package bench measures pretoken against DynamoDB Local and the Lambda
// runtime emulator: warm invocations against a read-per-invocation
// baseline, cold start against a minimal Go function, policy load and
// compile, and how fast a change reaches tokens. `make bench` runs these
// with the handler benchmarks and writes BENCHMARKS.md.
package bench
