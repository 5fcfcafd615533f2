{{ stg_coinglass_bars('cg_oi_aggregated', {
    'open': 'open_interest_open_usd',
    'high': 'open_interest_high_usd',
    'low': 'open_interest_low_usd',
    'close': 'open_interest_close_usd',
}) }}
