package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"text/template"
	"time"

	"github.com/capsa-project/capsa/image"
	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

// The image command group: Docker's top-level shortcuts (pull, push,
// images, rmi, tag, history, load, save, import) and `image SUBCOMMAND`.

func init() {
	imageCmd := &cobra.Command{Use: "image", Short: "Manage images"}
	ls := imagesCmd()
	ls.Use, ls.Aliases = "ls [OPTIONS] [REPOSITORY[:TAG]]", []string{"list"}
	rm := rmiCmd()
	rm.Use, rm.Aliases = "rm [OPTIONS] IMAGE [IMAGE...]", []string{"remove", "rmi"}
	imageCmd.AddCommand(ls, rm, pullCmd(), pushCmd(), tagCmd(), inspectCmd(), historyCmd(), loadCmd(), saveCmd(), importCmd(), pruneCmd())
	commands(imageCmd, pullCmd(), pushCmd(), imagesCmd(), rmiCmd(), tagCmd(), historyCmd(), loadCmd(), saveCmd(), importCmd())
}

func pullCmd() *cobra.Command {
	var quiet bool
	var platform, progressMode string
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := openImages()
			if err != nil {
				return err
			}
			opts := image.PullOptions{}
			if platform != "" {
				p, err := image.ParsePlatform(platform)
				if err != nil {
					return err
				}
				opts.Platform = &p
			}
			pp := newProgress(cmd.OutOrStdout(), progressMode, quiet)
			opts.Progress = pp.event
			named, err := reference.ParseNormalizedNamed(args[0])
			if err != nil {
				return fmt.Errorf("invalid reference format: %w", err)
			}
			named = reference.TagNameOnly(named)
			if t, ok := named.(reference.Tagged); ok {
				pp.status("%s: Pulling from %s", t.Tag(), reference.FamiliarName(named))
			} else {
				pp.status("Pulling %s", reference.FamiliarString(named))
			}
			res, err := svc.Pull(cmd.Context(), args[0], opts)
			if err != nil {
				return err
			}
			pp.status("Digest: %s", res.Digest)
			if res.UpToDate {
				pp.status("Status: Image is up to date for %s", reference.FamiliarString(named))
			} else {
				pp.status("Status: Downloaded newer image for %s", reference.FamiliarString(named))
			}
			if pp.mode != "json" {
				// Like docker, the full name last, for scripts.
				fmt.Fprintln(cmd.OutOrStdout(), named.String())
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	cmd.Flags().StringVar(&platform, "platform", "", "Set platform if server is multi-platform capable (os/arch[/variant])")
	cmd.Flags().StringVar(&progressMode, "progress", "auto", "Progress output: auto, tty, plain, json")
	return cmd
}

func pushCmd() *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := openImages()
			if err != nil {
				return err
			}
			named, err := reference.ParseNormalizedNamed(args[0])
			if err != nil {
				return fmt.Errorf("invalid reference format: %w", err)
			}
			pp := newProgress(cmd.OutOrStdout(), "plain", quiet)
			pp.status("The push refers to repository [%s]", named.Name())
			res, err := svc.Push(cmd.Context(), args[0], pp.event)
			if err != nil {
				return err
			}
			pp.status("%s: digest: %s size: %d", res.Tag, res.Digest, res.Size)
			if quiet {
				fmt.Fprintln(cmd.OutOrStdout(), reference.TagNameOnly(named).String())
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	return cmd
}

// imageRow is one line of `capsa images`; the field names are Docker's
// --format placeholders.
type imageRow struct {
	Containers   string
	CreatedAt    string
	CreatedSince string
	Digest       string
	ID           string
	Repository   string
	SharedSize   string
	Size         string
	Tag          string
	UniqueSize   string
	VirtualSize  string
}

var imageHeaders = map[string]string{
	"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "CreatedSince": "CREATED",
	"CreatedAt": "CREATED AT", "Size": "SIZE", "Digest": "DIGEST", "Containers": "CONTAINERS",
	"VirtualSize": "SIZE", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE",
}

func imagesCmd() *cobra.Command {
	var all, quiet, digests, noTrunc bool
	var format string
	var filters []string
	cmd := &cobra.Command{
		Use:   "images [OPTIONS] [REPOSITORY[:TAG]]",
		Short: "List images",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := openImages()
			if err != nil {
				return err
			}
			imgs, err := svc.List()
			if err != nil {
				return err
			}
			match, err := imageFilter(args, filters)
			if err != nil {
				return err
			}
			var rows []imageRow
			for _, img := range imgs {
				created := time.Time{}
				if img.Config.Created != nil {
					created = *img.Config.Created
				}
				id := img.ID.String()
				if !noTrunc {
					id = img.ID.Encoded()[:12]
				}
				base := imageRow{
					ID: id, CreatedSince: since(created), CreatedAt: created.Local().Format("2006-01-02 15:04:05 -0700 MST"),
					Size: humanSize(img.Size), VirtualSize: humanSize(img.Size), SharedSize: "N/A", UniqueSize: "N/A",
					Containers: "N/A", Repository: "<none>", Tag: "<none>", Digest: "<none>",
				}
				var tagged []imageRow
				digestOf := map[string]string{}
				for _, rd := range img.RepoDigests {
					repo, dg, _ := strings.Cut(rd, "@")
					digestOf[repo] = dg
				}
				for _, n := range img.Names {
					if !match(img, n) {
						continue
					}
					r := base
					repo, tag := splitName(n)
					r.Repository = image.FamiliarName(repo)
					if tag != "" {
						r.Tag = tag
					} else if !digests {
						continue // digest-only names show with --digests
					}
					if d, ok := digestOf[repo]; ok {
						r.Digest = d
					}
					if strings.Contains(n, "@") {
						r.Digest = n[strings.IndexByte(n, '@')+1:]
					}
					tagged = append(tagged, r)
				}
				if len(tagged) == 0 && (img.Dangling() || len(img.Names) > 0 && match(img, "")) {
					if img.Dangling() && !match(img, "") {
						continue
					}
					if !img.Dangling() {
						// Only digest names: show the repository without a tag.
						repo, _ := splitName(img.Names[0])
						base.Repository = image.FamiliarName(repo)
						if d, ok := digestOf[repo]; ok {
							base.Digest = d
						}
					}
					tagged = append(tagged, base)
				}
				rows = append(rows, tagged...)
			}
			out := cmd.OutOrStdout()
			if quiet {
				seen := map[string]bool{}
				for _, r := range rows {
					if !seen[r.ID] {
						seen[r.ID] = true
						fmt.Fprintln(out, r.ID)
					}
				}
				return nil
			}
			if format != "" {
				return formatRows(out, format, imageHeaders, anySlice(rows))
			}
			tw := newTable(out)
			if digests {
				fmt.Fprintln(tw, "REPOSITORY\tTAG\tDIGEST\tIMAGE ID\tCREATED\tSIZE")
			} else {
				fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
			}
			for _, r := range rows {
				if digests {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Repository, r.Tag, r.Digest, r.ID, r.CreatedSince, r.Size)
				} else {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Repository, r.Tag, r.ID, r.CreatedSince, r.Size)
				}
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "Show all images (default hides intermediate images)")
	f.BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	f.BoolVar(&digests, "digests", false, "Show digests")
	f.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	f.StringVar(&format, "format", "", "Format output using a Go template, or \"json\"")
	f.StringArrayVarP(&filters, "filter", "f", nil, "Filter output (dangling=true|false, reference=PATTERN)")
	return cmd
}

func anySlice[T any](in []T) []any {
	out := make([]any, len(in))
	for i := range in {
		out[i] = in[i]
	}
	return out
}

// splitName splits a normalized name into repository and tag ("" for a
// digest name).
func splitName(n string) (repo, tag string) {
	if i := strings.IndexByte(n, '@'); i >= 0 {
		return n[:i], ""
	}
	if i := strings.LastIndexByte(n, ':'); i > strings.LastIndexByte(n, '/') {
		return n[:i], n[i+1:]
	}
	return n, ""
}

// imageFilter builds the matcher for `images [REPO[:TAG]] --filter`.
func imageFilter(args, filters []string) (func(img *image.Image, name string) bool, error) {
	var refs []string
	dangling := ""
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("bad format of filter (expected name=value): %s", f)
		}
		switch k {
		case "dangling":
			if v != "true" && v != "false" {
				return nil, fmt.Errorf("invalid filter 'dangling=%s'", v)
			}
			dangling = v
		case "reference":
			refs = append(refs, v)
		default:
			return nil, fmt.Errorf("invalid filter '%s'", k)
		}
	}
	if len(args) == 1 {
		refs = append(refs, args[0])
	}
	return func(img *image.Image, name string) bool {
		if dangling == "true" && !img.Dangling() || dangling == "false" && img.Dangling() {
			return false
		}
		if len(refs) == 0 {
			return true
		}
		if name == "" {
			return false
		}
		fam := image.FamiliarName(name)
		famRepo, _ := splitName(fam)
		for _, r := range refs {
			if ok, _ := pathMatch(r, fam); ok {
				return true
			}
			if ok, _ := pathMatch(r, famRepo); ok {
				return true
			}
		}
		return false
	}, nil
}

func pathMatch(pattern, s string) (bool, error) { return path.Match(pattern, s) }

func rmiCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rmi [OPTIONS] IMAGE [IMAGE...]",
		Short: "Remove one or more images",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := openImages()
			if err != nil {
				return err
			}
			var errs []error
			for _, a := range args {
				res, err := svc.Remove(a, force)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				for _, u := range res.Untagged {
					fmt.Fprintf(cmd.OutOrStdout(), "Untagged: %s\n", u)
				}
				for _, d := range res.Deleted {
					fmt.Fprintf(cmd.OutOrStdout(), "Deleted: %s\n", d)
				}
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force removal of the image")
	return cmd
}

func tagCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := openImages()
			if err != nil {
				return err
			}
			return svc.Tag(args[0], args[1])
		},
	}
}

// inspectJSON is Docker's ImageInspect, the fields capsa knows.
type inspectJSON struct {
	ID            string             `json:"Id"`
	RepoTags      []string           `json:"RepoTags"`
	RepoDigests   []string           `json:"RepoDigests"`
	Parent        string             `json:"Parent"`
	Comment       string             `json:"Comment"`
	Created       string             `json:"Created,omitempty"`
	Author        string             `json:"Author"`
	Config        containerConfig    `json:"Config"`
	Architecture  string             `json:"Architecture"`
	Variant       string             `json:"Variant,omitempty"`
	Os            string             `json:"Os"`
	OsVersion     string             `json:"OsVersion,omitempty"`
	Size          int64              `json:"Size"`
	RootFS        rootFS             `json:"RootFS"`
	Metadata      map[string]string  `json:"Metadata"`
	Descriptor    ocispec.Descriptor `json:"Descriptor"`
	ManifestLayer []string           `json:"-"`
}

type rootFS struct {
	Type   string   `json:"Type"`
	Layers []string `json:"Layers"`
}

type containerConfig struct {
	User         string              `json:"User"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Env          []string            `json:"Env"`
	Cmd          []string            `json:"Cmd"`
	Entrypoint   []string            `json:"Entrypoint"`
	Volumes      map[string]struct{} `json:"Volumes"`
	WorkingDir   string              `json:"WorkingDir"`
	Labels       map[string]string   `json:"Labels"`
	StopSignal   string              `json:"StopSignal,omitempty"`
}

func toInspect(img *image.Image) inspectJSON {
	c := img.Config
	out := inspectJSON{
		ID: img.ID.String(), RepoTags: []string{}, RepoDigests: []string{},
		Author: c.Author, Architecture: c.Architecture, Variant: c.Variant, Os: c.OS, OsVersion: c.OSVersion,
		Size:       img.Size,
		RootFS:     rootFS{Type: c.RootFS.Type, Layers: []string{}},
		Metadata:   map[string]string{},
		Descriptor: img.Manifest,
		Config: containerConfig{
			User: c.Config.User, ExposedPorts: c.Config.ExposedPorts, Env: c.Config.Env, Cmd: c.Config.Cmd,
			Entrypoint: c.Config.Entrypoint, Volumes: c.Config.Volumes, WorkingDir: c.Config.WorkingDir,
			Labels: c.Config.Labels, StopSignal: c.Config.StopSignal,
		},
	}
	out.Descriptor.Annotations = nil
	if c.Created != nil {
		out.Created = c.Created.UTC().Format(time.RFC3339Nano)
	}
	for _, n := range img.Names {
		if !strings.Contains(n, "@") {
			out.RepoTags = append(out.RepoTags, image.FamiliarName(n))
		}
	}
	for _, rd := range img.RepoDigests {
		out.RepoDigests = append(out.RepoDigests, image.FamiliarName(rd))
	}
	for _, n := range img.Names {
		if strings.Contains(n, "@") && !contains(out.RepoDigests, image.FamiliarName(n)) {
			out.RepoDigests = append(out.RepoDigests, image.FamiliarName(n))
		}
	}
	for _, d := range c.RootFS.DiffIDs {
		out.RootFS.Layers = append(out.RootFS.Layers, d.String())
	}
	if len(c.History) > 0 {
		out.Comment = c.History[len(c.History)-1].Comment
	}
	if !img.LastTagTime.IsZero() {
		out.Metadata["LastTagTime"] = img.LastTagTime.Format(time.RFC3339Nano)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func inspectCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] IMAGE [IMAGE...]",
		Short: "Display detailed information on one or more images",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := openImages()
			if err != nil {
				return err
			}
			var out []inspectJSON
			var errs []error
			for _, a := range args {
				img, err := svc.Get(a)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				out = append(out, toInspect(img))
			}
			w := cmd.OutOrStdout()
			if format != "" && format != "json" {
				tmpl, err := template.New("inspect").Funcs(templateFuncs).Parse(format)
				if err != nil {
					return fmt.Errorf("template parsing error: %w", err)
				}
				for _, o := range out {
					// Templates see the JSON shape, as in Docker.
					var m map[string]any
					b, _ := json.Marshal(o)
					if err := json.Unmarshal(b, &m); err != nil {
						return err
					}
					if err := tmpl.Execute(w, m); err != nil {
						return fmt.Errorf("template: %w", err)
					}
					fmt.Fprintln(w)
				}
			} else {
				if out == nil {
					out = []inspectJSON{}
				}
				b, err := json.MarshalIndent(out, "", "    ")
				if err != nil {
					return err
				}
				fmt.Fprintln(w, string(b))
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a Go template, or \"json\"")
	return cmd
}

type historyRow struct {
	ID           string
	CreatedSince string
	CreatedAt    string
	CreatedBy    string
	Size         string
	Comment      string
}

func historyCmd() *cobra.Command {
	var human, noTrunc, quiet bool
	var format string
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := openImages()
			if err != nil {
				return err
			}
			img, err := svc.Get(args[0])
			if err != nil {
				return err
			}
			hist := img.Config.History
			layers := img.ManifestDoc.Layers
			var rows []historyRow
			li := 0
			for _, h := range hist {
				size := int64(0)
				if !h.EmptyLayer && li < len(layers) {
					size = layers[li].Size
					li++
				}
				r := historyRow{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment}
				if h.Created != nil {
					r.CreatedSince = since(*h.Created)
					r.CreatedAt = h.Created.Format(time.RFC3339)
				}
				if human {
					r.Size = humanSize(size)
				} else {
					r.Size = fmt.Sprint(size)
				}
				rows = append(rows, r)
			}
			if len(rows) == 0 {
				rows = append(rows, historyRow{ID: "<missing>", Size: humanSize(img.Size)})
			}
			// Newest first; the image ID on the newest row, as Docker shows.
			for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
				rows[i], rows[j] = rows[j], rows[i]
			}
			rows[0].ID = img.ID.String()
			if !noTrunc {
				rows[0].ID = img.ID.Encoded()[:12]
				for i := range rows {
					if len(rows[i].CreatedBy) > 45 {
						rows[i].CreatedBy = rows[i].CreatedBy[:44] + "…"
					}
				}
			}
			out := cmd.OutOrStdout()
			if quiet {
				for _, r := range rows {
					fmt.Fprintln(out, r.ID)
				}
				return nil
			}
			if format != "" {
				return formatRows(out, format, map[string]string{"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}, anySlice(rows))
			}
			tw := newTable(out)
			fmt.Fprintln(tw, "IMAGE\tCREATED\tCREATED BY\tSIZE\tCOMMENT")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.CreatedSince, r.CreatedBy, r.Size, r.Comment)
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&human, "human", "H", true, "Print sizes and dates in human readable format")
	f.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	f.BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	f.StringVar(&format, "format", "", "Format output using a Go template, or \"json\"")
	return cmd
}

func loadCmd() *cobra.Command {
	var input string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load an image from a tar archive or STDIN",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var r io.Reader = cmd.InOrStdin()
			if input != "" {
				f, err := os.Open(input)
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			} else if f, ok := r.(*os.File); ok && isTerminal(f) {
				return errors.New("requested load from stdin, but stdin is empty")
			}
			svc, err := openImages()
			if err != nil {
				return err
			}
			pp := newProgress(cmd.ErrOrStderr(), "auto", quiet)
			loaded, err := svc.Load(cmd.Context(), r, pp.event)
			if err != nil {
				return err
			}
			for _, l := range loaded {
				if l.Name != "" {
					fmt.Fprintf(cmd.OutOrStdout(), "Loaded image: %s\n", image.FamiliarName(l.Name))
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "Loaded image ID: %s\n", l.ID)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "Read from tar archive file, instead of STDIN")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress the load output")
	return cmd
}

func saveCmd() *cobra.Command {
	var output, format string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := openImages()
			if err != nil {
				return err
			}
			if output == "" {
				if f, ok := cmd.OutOrStdout().(*os.File); ok && isTerminal(f) {
					return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
				}
				return svc.Save(cmd.Context(), cmd.OutOrStdout(), args, format)
			}
			// Write next to the target and rename: no half-written archive.
			tmp := output + ".capsa-tmp"
			f, err := os.Create(tmp)
			if err != nil {
				return err
			}
			if err := svc.Save(cmd.Context(), f, args, format); err != nil {
				f.Close()
				os.Remove(tmp)
				return err
			}
			if err := f.Close(); err != nil {
				os.Remove(tmp)
				return err
			}
			return os.Rename(tmp, output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	cmd.Flags().StringVar(&format, "format", image.FormatDocker, "Archive format: docker-archive or oci-archive")
	return cmd
}

func importCmd() *cobra.Command {
	var message, platform string
	var changes []string
	cmd := &cobra.Command{
		Use:   "import [OPTIONS] file|- [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r io.Reader = cmd.InOrStdin()
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			}
			opts := image.ImportOptions{Message: message}
			if len(args) == 2 {
				opts.Name = args[1]
			}
			if platform != "" {
				p, err := image.ParsePlatform(platform)
				if err != nil {
					return err
				}
				opts.Platform = &p
			}
			for _, c := range changes {
				if err := applyChange(&opts.Changes, c); err != nil {
					return err
				}
			}
			svc, err := openImages()
			if err != nil {
				return err
			}
			img, err := svc.Import(cmd.Context(), r, opts)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), img.ID)
			return nil
		},
	}
	cmd.Flags().StringVarP(&message, "message", "m", "", "Set commit message for imported image")
	cmd.Flags().StringVar(&platform, "platform", "", "Set platform if server is multi-platform capable")
	cmd.Flags().StringArrayVarP(&changes, "change", "c", nil, "Apply Dockerfile instruction to the created image (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL)")
	return cmd
}

// applyChange applies one Dockerfile instruction of import --change.
func applyChange(c *ocispec.ImageConfig, change string) error {
	instr, rest, _ := strings.Cut(strings.TrimSpace(change), " ")
	rest = strings.TrimSpace(rest)
	args := func() []string {
		var list []string
		if strings.HasPrefix(rest, "[") && json.Unmarshal([]byte(rest), &list) == nil {
			return list
		}
		return []string{"/bin/sh", "-c", rest}
	}
	switch strings.ToUpper(instr) {
	case "CMD":
		c.Cmd = args()
	case "ENTRYPOINT":
		c.Entrypoint = args()
	case "ENV":
		k, v, ok := strings.Cut(rest, "=")
		if !ok {
			k, v, _ = strings.Cut(rest, " ")
		}
		c.Env = append(c.Env, strings.TrimSpace(k)+"="+strings.TrimSpace(v))
	case "WORKDIR":
		c.WorkingDir = rest
	case "USER":
		c.User = rest
	case "STOPSIGNAL":
		c.StopSignal = rest
	case "LABEL":
		k, v, _ := strings.Cut(rest, "=")
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		c.Labels[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
	case "EXPOSE":
		if c.ExposedPorts == nil {
			c.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range strings.Fields(rest) {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			c.ExposedPorts[p] = struct{}{}
		}
	case "VOLUME":
		if c.Volumes == nil {
			c.Volumes = map[string]struct{}{}
		}
		var list []string
		if json.Unmarshal([]byte(rest), &list) != nil {
			list = strings.Fields(rest)
		}
		for _, v := range list {
			c.Volumes[v] = struct{}{}
		}
	default:
		return fmt.Errorf("%s is not a valid change command", instr)
	}
	return nil
}

func pruneCmd() *cobra.Command {
	var all, force bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force {
				msg := "WARNING! This will remove all dangling images."
				if all {
					msg = "WARNING! This will remove all images without at least one container associated to them."
				}
				fmt.Fprintln(cmd.OutOrStdout(), msg)
				fmt.Fprint(cmd.OutOrStdout(), "Are you sure you want to continue? [y/N] ")
				var ans string
				if _, err := fmt.Fscanln(cmd.InOrStdin(), &ans); err != nil || (ans != "y" && ans != "Y") {
					return nil
				}
			}
			svc, err := openImages()
			if err != nil {
				return err
			}
			res, err := svc.Prune(all, nil)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if len(res.Untagged)+len(res.Deleted) > 0 {
				fmt.Fprintln(w, "Deleted Images:")
				for _, u := range res.Untagged {
					fmt.Fprintf(w, "untagged: %s\n", u)
				}
				for _, d := range res.Deleted {
					fmt.Fprintf(w, "deleted: %s\n", d)
				}
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "Total reclaimed space: %s\n", humanSize(res.Reclaimed))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "Remove all unused images, not just dangling ones")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	return cmd
}
