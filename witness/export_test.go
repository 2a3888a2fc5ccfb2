package witness

// CPUTime is cpuTime, for the benchmarks of package witness_test.
var CPUTime = cpuTime
