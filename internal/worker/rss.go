/*
Copyright 2026.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package worker

import "syscall"

// peakRSS is the process's peak resident set in bytes, or 0 where the OS does not say. The worker
// logs it with its result, so that a run on a real cluster shows whether memory stayed bounded
// whatever the archive's size (the ZIP64 e2e spec checks it).
func peakRSS() int64 {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	// Linux reports ru_maxrss in KiB.
	return usage.Maxrss << 10
}
