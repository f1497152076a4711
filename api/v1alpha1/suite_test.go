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
package v1alpha1_test

import (
	"context"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/download-operator/download-operator/test/testenv"
)

// These specs prove the Download schema against a real kube-apiserver: the bounds, the CEL rules
// and the printer columns are enforced there, not in Go code.

var (
	ctx context.Context
	env *testenv.Env
)

func TestDownloadAPI(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Download API Suite")
}

var _ = BeforeSuite(func() {
	ctx = context.Background()
	var err error
	env, err = testenv.Start()
	Expect(err).NotTo(HaveOccurred())
})

var _ = AfterSuite(func() {
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})
