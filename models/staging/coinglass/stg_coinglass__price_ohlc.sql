{{ stg_coinglass_bars('cg_price_ohlc', {
    'open': 'open',
    'high': 'high',
    'low': 'low',
    'close': 'close',
    'volume_usd': 'volume_usd',
}) }}
