//go:build e2e

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

// Package drills breaks the running demo stack on purpose and measures how download-operator
// copes (docs/reliability.md): controller, worker, storage and apiserver loss (R1 to R4),
// hostile traffic (R5), a cancel storm (R6), the nginx proxy proof, the security drills (S1 to
// S4), tenant isolation (S5) and Kueue fair sharing (K1). Every drill is labelled "drill" and its
// id, so that a label filter picks some:
//
//	go test -tags e2e ./test/drills/ -v -ginkgo.v -timeout 60m -ginkgo.label-filter='drill && !K1'
//
// It shares its set-up and helpers with the e2e suite through test/cluster.
package drills

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/download-operator/download-operator/test/cluster"
)

func TestDrills(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "download-operator drills")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	cluster.SetUp(ctx)
	// Drill S5 checks that a worker credential dies at its expiry, 15 minutes after minting.
	// Minted here when S5 is selected, the wait overlaps the rest of the run.
	armS5CredentialExpiry(ctx)
}, NodeTimeout(cluster.SetUpTimeout))

var _ = cluster.RegisterChecks()
