module github.com/pqrelay/pqrelay/benchmarks/loadgen/gofloor

go 1.26
