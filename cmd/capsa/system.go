package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// The system command group; `system df` reports images only until the
// engine adds containers, volumes and build cache.

func init() {
	sys := &cobra.Command{Use: "system", Short: "Manage capsa"}
	sys.AddCommand(dfCmd())
	commands(sys)
}

func dfCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show capsa disk usage",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := openImages()
			if err != nil {
				return err
			}
			du, err := svc.DF(nil)
			if err != nil {
				return err
			}
			pct := 0
			if du.Size > 0 {
				pct = int(du.Reclaimable * 100 / du.Size)
			}
			type row struct{ Type, TotalCount, Active, Size, Reclaimable string }
			rows := []row{
				{"Images", fmt.Sprint(du.Images), fmt.Sprint(du.Active), humanSize(du.Size), fmt.Sprintf("%s (%d%%)", humanSize(du.Reclaimable), pct)},
				{"Containers", "0", "0", "0B", "0B"},
				{"Local Volumes", "0", "0", "0B", "0B"},
				{"Build Cache", "0", "0", "0B", "0B"},
			}
			if format != "" {
				return formatRows(cmd.OutOrStdout(), format, map[string]string{"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"}, anySlice(rows))
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Type, r.TotalCount, r.Active, r.Size, r.Reclaimable)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "Format output using a Go template, or \"json\"")
	return cmd
}
