{{ stg_binance_klines('mark_klines') }}
