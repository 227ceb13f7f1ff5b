module github.com/pqrelay/pqrelay/benchmarks/scan

go 1.26

require (
	github.com/minio/simdjson-go v0.4.5
	github.com/pqrelay/pqrelay v0.0.0
	github.com/valyala/fastjson v1.6.10
)

require (
	github.com/klauspost/compress v1.20.0 // indirect
	github.com/klauspost/cpuid/v2 v2.4.2 // indirect
	golang.org/x/sys v0.47.0 // indirect
)

replace github.com/pqrelay/pqrelay => ../..
