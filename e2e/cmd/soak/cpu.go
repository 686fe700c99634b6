package main

import "runtime"

// numCPU is reported with the results: per-core figures only make sense with it.
func numCPU() int { return runtime.NumCPU() }
