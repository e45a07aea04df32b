-- Retreaver's own daily totals (reports facet=daily), kept to reconcile against calls.
with source as (
    select * from {{ raw_table('retreaver', 'report_daily') }}
),

renamed as (
    select
        day as date_day,
        total_calls,
        cast(converted_count as bigint) as converted_calls,
        revenue,
        payout,
        cost
    from source
)

select * from renamed
