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

// Package e2e tests download-operator as a user meets it: installed by hack/demo/up with its
// Helm chart on a real cluster, with MinIO on the host, driven through kubectl, the facade's
// HTTP API (pkg/client) and object storage. Run it with
//
//	go test -tags e2e ./test/e2e/ -v -ginkgo.v -timeout 30m
//
// The drills, which break the same stack on purpose, are a suite of their own (test/drills);
// both take their set-up and helpers from test/cluster.
package e2e

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/download-operator/download-operator/test/cluster"
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "download-operator e2e")
}

var _ = BeforeSuite(cluster.SetUp, NodeTimeout(cluster.SetUpTimeout))

var _ = cluster.RegisterChecks()
