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
	"maps"
	"math"
	"sync"
	"time"
)

// reservationTTL bounds how long a reservation holds a place without its Download reaching the
// cache. The watch delivers a Download within milliseconds, so the bound only matters when it
// never does: a Download created and deleted again while the watch was down, or a Create whose
// answer was lost although it may have been stored. Without a bound such a reservation would
// take one of the client's places for good; with it, the place comes back after this long, by
// when a Download that does exist has long reached the cache and is counted there.
const reservationTTL = 30 * time.Second

// reservations keep MaxActivePerClient exact on a replica without holding a lock across the
// Create: initiate counts a client's active Downloads in the cache plus the Downloads this
// replica is creating, or has created, that the cache does not hold yet, and reserves a place
// for its own before it creates it. The reservation ends when the cache holds the Download (its
// informer event, or a later count that finds it in the cache), when the apiserver refused the
// Create, or after reservationTTL.
//
// Counting is exact because every Download of a client is either in the cache or reserved at
// any moment a count looks, and never counted as both: a count copies the client's
// reservations before it lists the cache, and a reservation is dropped only once the cache
// holds its Download (the informer updates its store before it calls the event handlers), once
// the apiserver refused to make it, or once it lapsed. So a reservation missing from the copy
// belongs to a Download the listing finds (or to none), and one in the copy counts only when
// the listing does not find its name.
//
// The zero value is ready to use.
type reservations struct {
	// now is the clock, for tests; nil means time.Now.
	now func() time.Time

	mu      sync.Mutex
	clients map[string]*clientReservations
	// sweepAt is when reserve next drops lapsed reservations of every client, so that a client
	// who never comes back does not keep them in memory.
	sweepAt time.Time
}

// clientReservations is one client's turn to count and its reservations.
type clientReservations struct {
	// turn serialises the client's count-and-reserve, so two initiates cannot both take its last
	// place. It is held only while counting in the cache, never across a Create.
	turn sync.Mutex
	// waiting counts the initiates holding or waiting for turn; guarded by reservations.mu, as
	// is held. A client with neither is forgotten.
	waiting int
	// held maps the name of each reserved Download to its reservation. Guarded by
	// reservations.mu rather than turn, so the informer's event handler never waits for a count.
	held map[string]*reservation
}

type reservation struct {
	expires time.Time
	// holders counts the initiates creating this name: concurrent requests with one
	// Idempotency-Key create the same Download, and it must stay reserved until the last one
	// knows whether it was stored.
	holders int
}

// reserve counts the client's active Downloads and, when fewer than limit, reserves name for it.
// list returns the client's Downloads in the cache by name, each with whether it is active.
// admitted says whether the client may create name; active is the count (for the 429's text).
// After a Create the apiserver refused, undo gives the place back; it does nothing after one
// that may have stored the Download.
//
// A name the cache holds or that is already reserved (the same Idempotency-Key, sent again
// while its first request is still creating it) is admitted whatever the count: creating it
// makes no new Download, and its Create ends in the replay of the existing one.
func (r *reservations) reserve(client, name string, limit int, list func() (map[string]bool, error)) (active int, admitted bool, undo func(), err error) {
	c := r.enter(client)
	c.turn.Lock()
	defer r.leave(client, c)

	r.mu.Lock()
	pending := make(map[string]time.Time, len(c.held))
	for n, res := range c.held {
		pending[n] = res.expires
	}
	r.mu.Unlock()

	inCache, err := list()
	if err != nil {
		return 0, false, nil, err
	}
	for _, isActive := range inCache {
		if isActive {
			active++
		}
	}
	now := time.Now()
	if r.now != nil {
		now = r.now()
	}
	var done []string
	for n, expires := range pending {
		if _, ok := inCache[n]; ok || !now.Before(expires) {
			done = append(done, n)
			continue
		}
		active++
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range done {
		// The cache holds these, or they lapsed; the copy was taken before the listing, so a
		// reservation added since is not among them (only this client's turn adds any).
		delete(c.held, n)
	}
	_, known := inCache[name]
	res, inFlight := c.held[name]
	switch {
	case known:
		return active, true, func() {}, nil
	case inFlight:
		res.holders++
		res.expires = now.Add(reservationTTL)
	case active >= limit:
		return active, false, nil, nil
	default:
		if c.held == nil {
			c.held = map[string]*reservation{}
		}
		c.held[name] = &reservation{expires: now.Add(reservationTTL), holders: 1}
	}
	r.sweep(now)
	return active, true, func() { r.release(client, name) }, nil
}

// enter registers an initiate of the client, so its entry lives while the initiate waits.
func (r *reservations) enter(client string) *clientReservations {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.clients == nil {
		r.clients = map[string]*clientReservations{}
	}
	c := r.clients[client]
	if c == nil {
		c = &clientReservations{}
		r.clients[client] = c
	}
	c.waiting++
	return c
}

// leave ends the client's turn and forgets the client when nothing else refers to it.
func (r *reservations) leave(client string, c *clientReservations) {
	c.turn.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	c.waiting--
	r.forgetIdle(client, c)
}

// release is undo: one holder of name gave up after a Create the apiserver refused.
func (r *reservations) release(client, name string) { r.end(client, name, 1) }

// seen ends the reservation of a Download the cache now holds, whoever holds it. The informer's
// event handler calls it, after the informer has stored the Download, so a count that no longer
// sees the reservation finds the Download in the cache instead.
func (r *reservations) seen(client, name string) { r.end(client, name, math.MaxInt) }

// end takes holders off the reservation of name, and drops it when none is left.
func (r *reservations) end(client, name string, holders int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.clients[client]
	if c == nil {
		return
	}
	if res := c.held[name]; res != nil {
		if res.holders -= holders; res.holders <= 0 {
			delete(c.held, name)
		}
	}
	r.forgetIdle(client, c)
}

// sweep drops lapsed reservations of every client, at most once per reservationTTL; r.mu is held.
func (r *reservations) sweep(now time.Time) {
	if now.Before(r.sweepAt) {
		return
	}
	r.sweepAt = now.Add(reservationTTL)
	for client, c := range r.clients {
		maps.DeleteFunc(c.held, func(_ string, res *reservation) bool { return !now.Before(res.expires) })
		r.forgetIdle(client, c)
	}
}

// forgetIdle removes a client nobody waits for and nothing is reserved for; r.mu is held.
func (r *reservations) forgetIdle(client string, c *clientReservations) {
	if c.waiting == 0 && len(c.held) == 0 && r.clients[client] == c {
		delete(r.clients, client)
	}
}

// size is how many clients have an entry, for tests of forgetting.
func (r *reservations) size() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.clients)
}
