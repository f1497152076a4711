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
	"io/fs"
	"net/http"
	"os"
	"strings"
	"unicode/utf8"
)

// ui serves the demo page's static files from cfg.UIDir. Without --ui-dir the route is not
// registered at all, and / answers the router's JSON 404.
func (f *Facade) ui() http.HandlerFunc {
	return http.FileServerFS(uiFS{os.DirFS(f.cfg.UIDir)}).ServeHTTP
}

// uiFS answers "not found" for names no file can have (a NUL byte, invalid UTF-8). os.DirFS
// rejects them with an "invalid argument" error, which http.FileServer turns into a 500, and a
// client's odd path must never look like a server fault.
type uiFS struct{ fs.FS }

func (u uiFS) Open(name string) (fs.File, error) {
	if strings.ContainsRune(name, 0) || !utf8.ValidString(name) || !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return u.FS.Open(name)
}
