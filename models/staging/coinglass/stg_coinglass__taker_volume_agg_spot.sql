{{ stg_coinglass_bars('cg_taker_volume_agg_spot', {
    'taker_buy_volume_usd': 'taker_buy_volume_usd',
    'taker_sell_volume_usd': 'taker_sell_volume_usd',
}) }}
