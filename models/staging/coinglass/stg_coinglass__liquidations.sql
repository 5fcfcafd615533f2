{{ stg_coinglass_bars('cg_liquidations', {
    'long_liquidation_usd': 'long_liquidation_usd',
    'short_liquidation_usd': 'short_liquidation_usd',
}) }}
