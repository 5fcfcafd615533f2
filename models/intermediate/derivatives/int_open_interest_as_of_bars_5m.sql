{#- The SQL lives in macros/derivatives/open_interest_as_of_bars.sql (shared by the 5m and 1h grids). -#}
{{ open_interest_as_of_bars(ref('bars_5m')) }}
