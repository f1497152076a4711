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

package events

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"k8s.io/apimachinery/pkg/types"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/statusdoc"
)

// The event types. A Download's status implies each at most once (Implied).
const (
	// TypeStarted: the Download has a worker Job, its own or an identical Download's that it
	// follows; sent with the first status write that names the Job.
	TypeStarted = "dev.operator.download.started"
	// TypeCompleted: the archive is stored and its URL signed (phase Completed).
	TypeCompleted = "dev.operator.download.completed"
	// TypeFailed: the Download will not complete (phase Failed).
	TypeFailed = "dev.operator.download.failed"
)

// Types are every event type, in the order a Download goes through them.
var Types = []string{TypeStarted, TypeCompleted, TypeFailed}

// Implied are the events a Download's status implies: started once it names a worker Job,
// completed or failed once it finished. A Download completed from a stored archive (no Job)
// implies only completed; one failed before any Job (NamespaceNotServed) only failed.
func Implied(download *downloadv1alpha1.Download) []string {
	var implied []string
	if download.Status.JobName != "" {
		implied = append(implied, TypeStarted)
	}
	switch download.Status.Phase {
	case downloadv1alpha1.PhaseCompleted:
		implied = append(implied, TypeCompleted)
	case downloadv1alpha1.PhaseFailed:
		implied = append(implied, TypeFailed)
	}
	return implied
}

// Transitions are the events a status write from before to after newly implies.
func Transitions(before, after *downloadv1alpha1.Download) []string {
	had := Implied(before)
	return slices.DeleteFunc(Implied(after), func(t string) bool { return slices.Contains(had, t) })
}

// ID is an event's id: the same for every delivery of one event, so that receivers can drop
// redeliveries, and different for every Download (by UID, so a new Download of the same name
// is new) and type.
func ID(uid types.UID, eventType string) string {
	return string(uid) + "/" + strings.TrimPrefix(eventType, "dev.operator.download.")
}

// Source is the event source: the Download's API path.
func Source(download *downloadv1alpha1.Download) string {
	return fmt.Sprintf("/apis/%s/namespaces/%s/downloads/%s", downloadv1alpha1.GroupVersion, download.Namespace, download.Name)
}

// Data is an event's data.
type Data struct {
	JobID     string `json:"jobId"`
	Namespace string `json:"namespace"`
	// Status is the job's status document (internal/statusdoc) when the event was sent, without
	// the presigned URL and its expiry: events may be stored and forwarded, and the stable link
	// replaces a URL that expires. Its archiveUrl, once completed, is ArchiveURL.
	Status statusdoc.Document `json:"status"`
	// ArchiveURL is the stable link of the archive: absolute with --public-base-url, else a path
	// on the facade. It answers once the job completed, until status.archiveExpiresAt.
	ArchiveURL string `json:"archiveUrl"`
}

// dataOf is the data of download's events.
func dataOf(download *downloadv1alpha1.Download, baseURL string) Data {
	data := Data{
		JobID: download.Name, Namespace: download.Namespace,
		Status:     statusdoc.Of(download).WithoutPresignedURL(),
		ArchiveURL: baseURL + statusdoc.ArchivePath(download.Name),
	}
	if data.Status.ArchiveURL != "" {
		// The document's link is relative to the facade; a receiver may not know where that is.
		data.Status.ArchiveURL = data.ArchiveURL
	}
	return data
}

// encode builds the CloudEvent of eventType for download and returns it in the structured
// JSON format (application/cloudevents+json), which is what gets signed: the body holds every
// attribute, so the signature covers id, type, source and subject too, unlike the ce-* headers
// of the binary mode.
func encode(download *downloadv1alpha1.Download, eventType string, now time.Time, baseURL string) ([]byte, error) {
	e := event.New(event.CloudEventsVersionV1)
	e.SetID(ID(download.UID, eventType))
	e.SetSource(Source(download))
	e.SetType(eventType)
	e.SetSubject(download.Name)
	// Completion is a recorded time, so redeliveries carry the same; start is when it was seen.
	when := now
	if eventType != TypeStarted && download.Status.CompletionTime != nil {
		when = download.Status.CompletionTime.Time
	}
	e.SetTime(when.UTC())
	if err := e.SetData(event.ApplicationJSON, dataOf(download, baseURL)); err != nil {
		return nil, fmt.Errorf("encoding the data of %s for Download %s/%s: %w", eventType, download.Namespace, download.Name, err)
	}
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("building %s for Download %s/%s: %w", eventType, download.Namespace, download.Name, err)
	}
	body, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encoding %s for Download %s/%s: %w", eventType, download.Namespace, download.Name, err)
	}
	return body, nil
}
