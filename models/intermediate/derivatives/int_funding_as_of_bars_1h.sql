{#- The SQL lives in macros/derivatives/funding_as_of_bars.sql (shared by the 5m and 1h grids). -#}
{{ funding_as_of_bars(ref('bars_1h')) }}
