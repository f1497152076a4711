// Command imagebuild packages static binaries into a single-layer container image tarball,
// without a Docker engine. It exists because this project's machines (developers' and CI's)
// have no Docker daemon, yet the local cluster (hack/local-cluster) needs real images that
// containerd can import with `ctr images import`.
//
// Usage:
//
//	go run ./hack/imagebuild operator [--out F] [--tag download-operator:dev] [--add web/dist:/ui]
//	go run ./hack/imagebuild pause    [--out F] [--tag registry.k8s.io/pause:3.10]
//	go run ./hack/imagebuild smoke    [--out F] [--tag download-operator-smoke:dev]
//	go run ./hack/imagebuild gobuild  --pkg ./path --name NAME --out F --tag T [--add SRC:DEST]...
//	go run ./hack/imagebuild files    --bin SRC[:DEST]... --out F --tag T [--entrypoint /x] [--add SRC:DEST]...
//
// "operator", "pause" and "smoke" build a Go package of this module with CGO_ENABLED=0 and
// package it; "gobuild" does the same for any package; "files" packages binaries built elsewhere.
// The image is FROM scratch (empty.Image) plus one layer, with OS/Architecture/Entrypoint set:
// without them containerd filters the image out on import, or the kubelet fails with
// "args must not be empty".
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// nonRootUID is the conventional "nonroot" user of distroless images; Pods running the image can
// then satisfy the restricted Pod Security profile (runAsNonRoot) without extra settings.
const nonRootUID = 65532

// epoch is the mtime of every entry, so that the same inputs give the same layer digest.
var epoch = time.Unix(0, 0).UTC()

// spec is everything that goes into one image.
type spec struct {
	tag        string
	out        string
	files      []mapping // single files (binaries), mode kept from the source
	dirs       []mapping // whole directory trees (or single files) copied under DEST
	entrypoint []string
	env        []string
	user       string
	workdir    string
	caCerts    bool
}

// mapping is SRC:DEST; DEST is an absolute path inside the image.
type mapping struct{ src, dest string }

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "imagebuild:", err)
		os.Exit(1)
	}
}

func usage() error {
	return errors.New("usage: imagebuild operator|pause|smoke|gobuild|files [flags] (see the package comment)")
}

// options are the parsed command line of one subcommand.
type options struct {
	spec
	bins, adds, envs multiFlag
	pkg, binName     string
	entry            string
}

func run(args []string) error {
	if len(args) == 0 {
		return usage()
	}
	o, err := parseArgs(args[0], args[1:])
	if err != nil {
		return err
	}
	if o.pkg != "" {
		tmp, err := os.MkdirTemp("", "imagebuild-")
		if err != nil {
			return err
		}
		defer func() { _ = os.RemoveAll(tmp) }()
		bin := filepath.Join(tmp, o.binName)
		if err := goBuild(o.pkg, bin); err != nil {
			return err
		}
		o.bins = append(o.bins, bin)
	}
	s, err := o.toSpec()
	if err != nil {
		return err
	}
	return build(s)
}

// parseArgs reads the flags of subcommand sub; the named subcommands preset package and tag.
func parseArgs(sub string, args []string) (*options, error) {
	o := &options{}
	fset := flag.NewFlagSet(sub, flag.ContinueOnError)
	fset.StringVar(&o.out, "out", "", "output tarball (default: <name>.tar in the current directory)")
	fset.StringVar(&o.tag, "tag", "", "image reference written into the tarball")
	fset.Var(&o.adds, "add", "SRC:DEST directory or file to copy into the image (repeatable)")
	fset.Var(&o.envs, "env", "KEY=VALUE environment variable (repeatable)")
	fset.StringVar(&o.user, "user", strconv.Itoa(nonRootUID), "user (uid[:gid]) the entrypoint runs as")
	fset.StringVar(&o.workdir, "workdir", "/", "working directory")
	fset.BoolVar(&o.caCerts, "ca-certs", true, "copy the host's CA bundle to /etc/ssl/certs/ca-certificates.crt")
	fset.StringVar(&o.entry, "entrypoint", "", "entrypoint path (default: the first binary)")
	switch sub {
	case "operator":
		o.pkg, o.binName, o.tag = "./cmd", "download-operator", "download-operator:dev"
	case "pause":
		// The kubelet asks for exactly this reference as the sandbox image; containerd's
		// sandbox_image setting names it too. The pause program needs no CA bundle.
		o.pkg, o.binName, o.tag, o.caCerts = "./hack/imagebuild/pause", "pause", "registry.k8s.io/pause:3.10", false
	case "smoke":
		o.pkg, o.binName, o.tag = "./hack/imagebuild/smoke", "smoke", "download-operator-smoke:dev"
	case "gobuild":
		fset.StringVar(&o.pkg, "pkg", "", "Go package to build (required)")
		fset.StringVar(&o.binName, "name", "", "binary name inside the image, at /NAME (default: last element of --pkg)")
	case "files":
		fset.Var(&o.bins, "bin", "SRC[:DEST] static binary to put in the image (repeatable; DEST defaults to /basename)")
	default:
		return nil, usage()
	}
	if err := fset.Parse(args); err != nil {
		return nil, err
	}
	if fset.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fset.Args())
	}
	if sub == "gobuild" {
		if o.pkg == "" {
			return nil, errors.New("gobuild: --pkg is required")
		}
		if o.binName == "" {
			o.binName = path.Base(filepath.ToSlash(o.pkg))
		}
	}
	return o, nil
}

// toSpec checks the mappings and fills in the defaults that depend on them.
func (o *options) toSpec() (spec, error) {
	s := o.spec
	if len(o.bins) == 0 {
		return s, errors.New("no binary given (--bin)")
	}
	for _, b := range o.bins {
		m, err := parseMapping(b, true)
		if err != nil {
			return s, err
		}
		s.files = append(s.files, m)
	}
	for _, a := range o.adds {
		m, err := parseMapping(a, false)
		if err != nil {
			return s, err
		}
		s.dirs = append(s.dirs, m)
	}
	entry := o.entry
	if entry == "" {
		entry = s.files[0].dest
	}
	s.entrypoint = []string{entry}
	s.env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin"}, o.envs...)
	if s.tag == "" {
		return s, errors.New("--tag is required")
	}
	if s.out == "" {
		s.out = path.Base(s.files[0].dest) + ".tar"
	}
	return s, nil
}

// goBuild compiles a static binary: CGO_ENABLED=0 so it runs in an image with no libc.
func goBuild(pkg, out string) error {
	fmt.Fprintf(os.Stderr, "imagebuild: go build %s\n", pkg)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}

// parseMapping reads SRC[:DEST]. For binaries DEST defaults to /basename(SRC); for --add it is
// required, since copying a build directory to "/" is rarely what anyone means.
func parseMapping(v string, isBin bool) (mapping, error) {
	src, dest, ok := strings.Cut(v, ":")
	if !ok {
		if !isBin {
			return mapping{}, fmt.Errorf("--add %q: want SRC:DEST", v)
		}
		dest = "/" + filepath.Base(src)
	}
	if !path.IsAbs(dest) {
		return mapping{}, fmt.Errorf("%q: destination must be absolute", v)
	}
	if _, err := os.Stat(src); err != nil {
		return mapping{}, err
	}
	return mapping{src: src, dest: path.Clean(dest)}, nil
}

func build(s spec) error {
	layerTar, err := layerBytes(s)
	if err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Created = v1.Time{Time: epoch}
	cfg.Config.Entrypoint = s.entrypoint
	cfg.Config.Env = s.env
	cfg.Config.User = s.user
	cfg.Config.WorkingDir = s.workdir
	cfg.Config.Labels = map[string]string{"org.opencontainers.image.source": "hack/imagebuild"}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return err
	}
	ref, err := name.ParseReference(s.tag)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.out), 0o755); err != nil {
		return err
	}
	if err := tarball.WriteToFile(s.out, ref, img); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "imagebuild: wrote %s (%s, %s)\n", s.out, s.tag, digest)
	return nil
}

// layerWriter writes a tar stream, adding each parent directory once, as root-owned 0755.
type layerWriter struct {
	tw   *tar.Writer
	seen map[string]bool
}

func (w *layerWriter) dir(p string, mode int64) error {
	p = path.Clean(p)
	if p == "/" || p == "." || w.seen[p] {
		return nil
	}
	if err := w.dir(path.Dir(p), 0o755); err != nil {
		return err
	}
	w.seen[p] = true
	return w.tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeDir, Name: strings.TrimPrefix(p, "/") + "/", Mode: mode, ModTime: epoch,
		Format: tar.FormatPAX,
	})
}

func (w *layerWriter) file(p string, mode int64, data []byte) error {
	if err := w.dir(path.Dir(p), 0o755); err != nil {
		return err
	}
	if err := w.tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg, Name: strings.TrimPrefix(path.Clean(p), "/"), Mode: mode,
		Size: int64(len(data)), ModTime: epoch, Format: tar.FormatPAX,
	}); err != nil {
		return err
	}
	_, err := w.tw.Write(data)
	return err
}

func (w *layerWriter) symlink(p, target string) error {
	if err := w.dir(path.Dir(p), 0o755); err != nil {
		return err
	}
	return w.tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeSymlink, Name: strings.TrimPrefix(path.Clean(p), "/"), Linkname: target,
		Mode: 0o777, ModTime: epoch, Format: tar.FormatPAX,
	})
}

// copyFile adds one host file at dest, keeping its permission bits (so binaries stay executable).
func (w *layerWriter) copyFile(src, dest string) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return w.file(dest, int64(st.Mode().Perm()), data)
}

// copyTree adds a directory tree (sorted, for a reproducible digest) under dest.
func (w *layerWriter) copyTree(src, dest string) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return w.copyFile(src, dest)
	}
	var paths []string
	err = filepath.WalkDir(src, func(p string, _ fs.DirEntry, err error) error {
		if err == nil {
			paths = append(paths, p)
		}
		return err
	})
	if err != nil {
		return err
	}
	slices.Sort(paths)
	for _, p := range paths {
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := path.Join(dest, filepath.ToSlash(rel))
		lst, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case lst.IsDir():
			err = w.dir(target, 0o755)
		case lst.Mode()&fs.ModeSymlink != 0:
			var link string
			if link, err = os.Readlink(p); err == nil {
				err = w.symlink(target, link)
			}
		case lst.Mode().IsRegular():
			err = w.copyFile(p, target)
		default:
			fmt.Fprintf(os.Stderr, "imagebuild: skipping %s (not a regular file)\n", p)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// layerBytes builds the single layer: a distroless-like skeleton (/tmp, /etc/passwd with the
// nonroot user, optionally the CA bundle), then the binaries, then the extra trees.
func layerBytes(s spec) ([]byte, error) {
	var buf bytes.Buffer
	w := &layerWriter{tw: tar.NewWriter(&buf), seen: map[string]bool{}}
	// /tmp must be world-writable and sticky: Go's os.TempDir and many libraries use it.
	if err := w.dir("/tmp", 0o1777); err != nil {
		return nil, err
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\n"+
		"nonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", nonRootUID, nonRootUID)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", nonRootUID)
	if err := w.file("/etc/passwd", 0o644, []byte(passwd)); err != nil {
		return nil, err
	}
	if err := w.file("/etc/group", 0o644, []byte(group)); err != nil {
		return nil, err
	}
	if s.caCerts {
		const bundle = "/etc/ssl/certs/ca-certificates.crt"
		if _, err := os.Stat(bundle); err == nil {
			if err := w.copyFile(bundle, bundle); err != nil {
				return nil, err
			}
		}
	}
	for _, f := range s.files {
		if err := w.copyFile(f.src, f.dest); err != nil {
			return nil, err
		}
	}
	for _, d := range s.dirs {
		if err := w.copyTree(d.src, d.dest); err != nil {
			return nil, err
		}
	}
	if err := w.tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
