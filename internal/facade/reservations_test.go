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

package facade

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeCache plays the facade's informer for reservations: a Download reaches the store some
// time after its Create, and only then is seen, in the order the informer would do both.
type fakeCache struct {
	mu    sync.Mutex
	store map[string]bool
}

func (c *fakeCache) list() (map[string]bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.store), nil
}

func (c *fakeCache) put(name string, active bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.store[name] = active
}

func (c *fakeCache) remove(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.store, name)
}

// The envtest tests (TestABurstOfInitiatesNeverPassesTheActiveCap) show the same on the real
// watch; here the watch lags at random, hundreds of times, which a race in counting would not
// survive.
func TestReservationsLetExactlyTheLimitThroughABurst(t *testing.T) {
	const limit, burst = 5, 15
	for round := range 300 {
		r := &reservations{}
		cache := &fakeCache{store: map[string]bool{"finished": false}}
		existing := round % 3
		for i := range existing {
			cache.put(fmt.Sprint("existing-", i), true)
		}
		// The informer: each created Download reaches the store after a random lag, then is seen.
		created := make(chan string, burst)
		informed := make(chan struct{})
		go func() {
			defer close(informed)
			for name := range created {
				time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
				cache.put(name, true)
				r.seen("client", name)
			}
		}()
		var admitted, stored atomic.Int32
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range burst {
			wg.Go(func() {
				<-start
				name := fmt.Sprint("new-", i)
				_, ok, _, err := r.reserve("client", name, limit, cache.list)
				if err != nil || !ok {
					return
				}
				admitted.Add(1)
				stored.Add(1) // the Create succeeded: the apiserver holds it from now on
				created <- name
			})
		}
		close(start)
		wg.Wait()
		close(created)
		<-informed
		if want := int32(limit - existing); admitted.Load() != want || stored.Load() != want {
			t.Fatalf("round %d with %d existing: %d admitted, %d stored, want %d of each",
				round, existing, admitted.Load(), stored.Load(), want)
		}
		if r.size() != 0 {
			t.Fatalf("round %d: %d clients remembered after every Download was seen", round, r.size())
		}
	}
}

func TestReservationsEnd(t *testing.T) {
	now := time.Unix(1000, 0)
	setup := func() (*reservations, *fakeCache) {
		r := &reservations{now: func() time.Time { return now }}
		return r, &fakeCache{store: map[string]bool{}}
	}
	reserve := func(t *testing.T, r *reservations, cache *fakeCache, name string) (int, bool, func()) {
		t.Helper()
		active, ok, undo, err := r.reserve("client", name, 1, cache.list)
		if err != nil {
			t.Fatal(err)
		}
		return active, ok, undo
	}
	admits := func(t *testing.T, r *reservations, cache *fakeCache, name string) bool {
		t.Helper()
		_, ok, _ := reserve(t, r, cache, name)
		return ok
	}
	// placeComesBack checks that the client's one place stays taken until release has run, and
	// is free after.
	placeComesBack := func(t *testing.T, r *reservations, cache *fakeCache, release func(), stillTaken, notBack string) {
		t.Helper()
		if admits(t, r, cache, "b") {
			t.Fatal(stillTaken)
		}
		release()
		if !admits(t, r, cache, "b") {
			t.Error(notBack)
		}
	}

	t.Run("a refused Create gives the place back", func(t *testing.T) {
		r, cache := setup()
		_, _, undo := reserve(t, r, cache, "a")
		placeComesBack(t, r, cache, undo, "a second Download passed a limit of 1 while the first is being created",
			"the place of a refused Create was not given back")
	})

	t.Run("a Download the cache holds is counted once", func(t *testing.T) {
		r, cache := setup()
		reserve(t, r, cache, "a")
		cache.put("a", true) // the cache has it; its event handler has not run yet
		if active, ok, _ := reserve(t, r, cache, "b"); ok || active != 1 {
			t.Errorf("counted %d (admitted %v), want 1: the Download and its reservation are one", active, ok)
		}
		cache.put("a", false)
		if !admits(t, r, cache, "b") {
			t.Error("a finished Download still holds its place")
		}
	})

	t.Run("a Download seen and deleted before the next count no longer counts", func(t *testing.T) {
		r, cache := setup()
		reserve(t, r, cache, "a")
		cache.put("a", true)
		r.seen("client", "a")
		cache.remove("a")
		if !admits(t, r, cache, "b") {
			t.Error("a cancelled Download still counts through its reservation")
		}
	})

	t.Run("a reservation the watch never ends lapses", func(t *testing.T) {
		r, cache := setup()
		reserve(t, r, cache, "a")
		now = now.Add(29 * time.Second)
		placeComesBack(t, r, cache, func() { now = now.Add(time.Second) }, "the reservation lapsed early",
			"a reservation whose Download never reached the cache blocks the client for good")
	})

	t.Run("one Idempotency-Key in flight twice holds one place until both know", func(t *testing.T) {
		r, cache := setup()
		_, ok1, undo1 := reserve(t, r, cache, "keyed")
		active, ok2, undo2 := reserve(t, r, cache, "keyed")
		if !ok1 || !ok2 || active != 1 {
			t.Fatalf("admitted %v and %v with %d counted: the same name is not a second Download", ok1, ok2, active)
		}
		undo1()
		placeComesBack(t, r, cache, undo2, "the place went back while the second request may still create the Download",
			"the place did not come back once both were refused")
	})

	t.Run("a name the cache already holds is admitted at the limit", func(t *testing.T) {
		r, cache := setup()
		cache.put("keyed", true)
		if !admits(t, r, cache, "keyed") {
			t.Error("the replay of an existing Download was refused by the cap it is counted in")
		}
	})

	t.Run("a failed count reserves nothing", func(t *testing.T) {
		r, _ := setup()
		_, ok, _, err := r.reserve("client", "a", 1, func() (map[string]bool, error) { return nil, errors.New("no cache") })
		if err == nil || ok {
			t.Errorf("admitted %v, error %v", ok, err)
		}
		if r.size() != 0 {
			t.Error("a failed count left the client remembered")
		}
	})

	t.Run("clients gone idle are forgotten", func(t *testing.T) {
		r, cache := setup()
		for i := range 100 {
			if _, ok, _, err := r.reserve(fmt.Sprint("client-", i), "a", 1, cache.list); err != nil || !ok {
				t.Fatal(ok, err)
			}
		}
		r.seen("client-0", "a")
		if r.size() != 99 {
			t.Fatalf("%d clients remembered, want 99", r.size())
		}
		now = now.Add(time.Minute)
		reserve(t, r, cache, "b")
		if r.size() != 1 {
			t.Errorf("%d clients remembered after every other reservation lapsed, want 1", r.size())
		}
	})
}
