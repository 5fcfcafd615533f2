{{ stg_coinglass_bars('cg_funding_vol_weighted', {
    'open': 'funding_open_pct',
    'high': 'funding_high_pct',
    'low': 'funding_low_pct',
    'close': 'funding_close_pct',
}) }}
