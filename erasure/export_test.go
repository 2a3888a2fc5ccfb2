package erasure

// SealAsBefore makes s seal in enc2, the form of the blobs sealed before
// enc3, so that tests can make such events and check they open as before.
func SealAsBefore(s *Sealer) { s.asBefore = true }
