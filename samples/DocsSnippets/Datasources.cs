using System.Data;
using System.Globalization;
using Dbos;
using Dbos.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;

namespace DocsSnippets;

/// <summary>The examples of docs/datasources.md.</summary>
public static class Datasources
{
    public static async Task AdoNetAsync(DbosApp dbos)
    {
        // <snippet:datasources-ado>
        // ADO.NET (works with Dapper too): you get the open DbConnection and DbTransaction.
        await using var shop = await SqlDatasource.CreateAsync("postgresql://app:secret@db:5432/shop");
        var reserve = dbos.RegisterWorkflow("reserve", async (WorkflowContext ctx, Order order) =>
            await shop.RunTransactionAsync("take-stock", async (tx, ct) =>
            {
                await tx.ExecuteAsync("UPDATE stock SET count = count - $1 WHERE item = $2", order.Quantity, order.Item);
                return Convert.ToInt64(await tx.ScalarAsync("SELECT count FROM stock WHERE item = $1", order.Item), CultureInfo.InvariantCulture);
            }, new TransactionOptions { IsolationLevel = IsolationLevel.Serializable }));
        // </snippet:datasources-ado>
        Console.WriteLine(reserve.Name);
    }

    public static async Task EntityFrameworkAsync(string url, Order order)
    {
        // <snippet:datasources-ef>
        // Entity Framework Core (package Dbos.EntityFrameworkCore): your DbContext's changes commit with the checkpoint.
        await using var ef = await EfDatasource<ShopContext>.CreateAsync(url, c => new ShopContext(
            new DbContextOptionsBuilder<ShopContext>().UseNpgsql(c).Options));
        await ef.RunTransactionAsync("record-order", (db, ct) =>
        {
            db.Orders.Add(new OrderRow { Id = order.Id, Item = order.Item });
            return Task.FromResult(0);
        });
        // </snippet:datasources-ef>
    }

    public static void Legacy()
    {
        // <snippet:datasources-legacy>
        // The legacy style: one application database in the configuration, transactions registered on the app.
        var dbos = DbosApp.Create(new DbosConfig { Name = "shop", ApplicationDatabaseUrl = "sqlite:///shop-data.sqlite" });
        var insert = dbos.RegisterTransaction("insert-order", (TransactionContext tx, Order o, CancellationToken ct) =>
            tx.ExecuteAsync("INSERT INTO orders (id, item) VALUES ($1, $2)", o.Id, o.Item));
        // </snippet:datasources-legacy>
        Console.WriteLine(insert.Name);
    }
}
